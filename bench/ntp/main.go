// Command ntpload is a bounded NTP load generator for bench/ntp/run.sh: C
// concurrent clients, each with its own UDP socket, send client requests
// to one server for a fixed time (at most 60 s) and report responses per
// second and the server's receive-to-transmit latency (its transmit minus
// its receive timestamp, from the replies). It is not part of `make test`.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:123", "server address")
	clients := flag.Int("clients", 32, "concurrent clients (1 to 256)")
	window := flag.Int("window", 4, "requests each client keeps in flight (1 to 64)")
	dur := flag.Duration("duration", 5*time.Second, "how long to send (at most 60s)")
	label := flag.String("label", "", "name printed with the result")
	flag.Parse()
	if *clients < 1 || *clients > 256 || *window < 1 || *window > 64 || *dur <= 0 || *dur > time.Minute {
		fmt.Fprintln(os.Stderr, "ntpload: -clients 1..256, -window 1..64, -duration up to 60s")
		os.Exit(2)
	}
	to, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntpload:", err)
		os.Exit(2)
	}
	var (
		mu       sync.Mutex
		total    int
		kods     int
		lost     int
		lats     []time.Duration
		wg       sync.WaitGroup
		deadline = time.Now().Add(*dur)
	)
	start := time.Now()
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, k, l, lat, err := client(to, *window, deadline)
			if err != nil {
				fmt.Fprintln(os.Stderr, "ntpload:", err)
			}
			mu.Lock()
			total, kods, lost = total+n, kods+k, lost+l
			lats = append(lats, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	slices.Sort(lats)
	q := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(p*float64(len(lats))))]
	}
	fmt.Printf("%s\tresponses/s %.0f\tkod %d\tlost %d\trx->tx p50 %s p99 %s\n", *label, float64(total)/el, kods, lost, q(0.5), q(0.99))
}

// client keeps `window` requests in flight on its own socket until the
// deadline. A request unanswered for 100 ms counts as lost and is replaced.
func client(to *net.UDPAddr, window int, deadline time.Time) (n, kods, lost int, lats []time.Duration, err error) {
	c, err := net.DialUDP("udp", nil, to)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	defer c.Close()
	req := make([]byte, 48)
	req[0] = 0x23 // v4, client
	var seq uint64
	send := func() {
		seq++
		binary.BigEndian.PutUint64(req[40:], seq)
		c.Write(req)
	}
	for range window {
		send()
	}
	buf := make([]byte, 512)
	for time.Now().Before(deadline) {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		m, err := c.Read(buf)
		if err != nil {
			lost++
			send()
			continue
		}
		if m >= 48 {
			if buf[1] == 0 {
				kods++
			} else {
				n++
				if n%16 == 0 { // sample the latency
					rx := ntpDur(buf[32:40])
					tx := ntpDur(buf[40:48])
					lats = append(lats, tx-rx)
				}
			}
		}
		send()
	}
	return n, kods, lost, lats, nil
}

// ntpDur reads a 64-bit NTP timestamp as a duration since its era began.
func ntpDur(b []byte) time.Duration {
	v := binary.BigEndian.Uint64(b)
	return time.Duration(v>>32)*time.Second + time.Duration((v&0xffffffff)*uint64(time.Second)>>32)
}
