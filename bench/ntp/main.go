// Command ntpload is a bounded NTP load generator for bench/ntp/run.sh: C
// concurrent clients, each with its own UDP socket, send client requests
// to one server for a fixed time (at most 60 s). It reports responses per
// second, the round trip each client saw, and the server's
// receive-to-transmit time (its transmit minus its receive timestamp, from
// the replies). It is not part of `make test`.
//
// Full load (-rate 0): each client keeps -window requests in flight and
// sends and reads them a batch per system call (sendmmsg, recvmmsg), so one
// core of load generator outruns one core of server. Capped (-rate R): R
// requests per second spread over the clients, one in flight each, for
// latency percentiles below saturation.
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

	"golang.org/x/net/ipv4"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:123", "server address")
	clients := flag.Int("clients", 32, "concurrent clients (1 to 256)")
	window := flag.Int("window", 4, "requests each client keeps in flight at full load (1 to 64)")
	rate := flag.Int("rate", 0, "total requests per second (0: as fast as the server answers)")
	dur := flag.Duration("duration", 5*time.Second, "how long to send (at most 60s)")
	label := flag.String("label", "", "name printed with the result")
	flag.Parse()
	if *clients < 1 || *clients > 256 || *window < 1 || *window > 64 || *dur <= 0 || *dur > time.Minute || *rate < 0 || *rate > 1e6 {
		fmt.Fprintln(os.Stderr, "ntpload: -clients 1..256, -window 1..64, -rate 0..1000000, -duration up to 60s")
		os.Exit(2)
	}
	to, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntpload:", err)
		os.Exit(2)
	}
	var (
		mu       sync.Mutex
		tot      stats
		wg       sync.WaitGroup
		start    = time.Now()
		deadline = start.Add(*dur)
	)
	for i := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st stats
			var err error
			if *rate > 0 {
				per := time.Duration(float64(time.Second) * float64(*clients) / float64(*rate))
				// Spread the clients' first sends over one period.
				err = paced(to, start.Add(per*time.Duration(i)/time.Duration(*clients)), per, deadline, start, &st)
			} else {
				err = flood(to, *window, deadline, start, &st)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "ntpload:", err)
			}
			mu.Lock()
			tot.add(&st)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	slices.Sort(tot.rtt)
	slices.Sort(tot.srv)
	fmt.Printf("%s\tresponses/s %.0f\tkod %d\tlost %d\trtt p50 %s p99 %s p999 %s\trx->tx p50 %s p99 %s\n",
		*label, float64(tot.n)/el, tot.kods, tot.lost,
		us(q(tot.rtt, 0.5)), us(q(tot.rtt, 0.99)), us(q(tot.rtt, 0.999)), us(q(tot.srv, 0.5)), us(q(tot.srv, 0.99)))
}

// stats is one client's tally; rtt and srv are samples.
type stats struct {
	n, kods, lost int
	rtt, srv      []time.Duration
}

func (s *stats) add(o *stats) {
	s.n, s.kods, s.lost = s.n+o.n, s.kods+o.kods, s.lost+o.lost
	s.rtt, s.srv = append(s.rtt, o.rtt...), append(s.srv, o.srv...)
}

// reply tallies one datagram; sample says whether to keep its latencies.
func (s *stats) reply(b []byte, now time.Duration, sample bool) {
	if len(b) < 48 {
		return
	}
	if b[1] == 0 {
		s.kods++
		return
	}
	s.n++
	if sample {
		// The origin timestamp echoes what we sent as transmit: our
		// send time, in ns since start.
		s.rtt = append(s.rtt, now-time.Duration(binary.BigEndian.Uint64(b[24:32])))
		s.srv = append(s.srv, ntpDur(b[40:48])-ntpDur(b[32:40]))
	}
}

func q(v []time.Duration, p float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	return v[min(len(v)-1, int(p*float64(len(v))))]
}

func us(d time.Duration) string { return fmt.Sprintf("%.1fus", float64(d)/1e3) }

func request(b []byte, sent time.Duration) {
	clear(b[:48])
	b[0] = 0x23 // v4, client
	binary.BigEndian.PutUint64(b[40:], uint64(sent))
}

// flood keeps window requests in flight on its own socket until the
// deadline, a batch per system call. An idle 100 ms counts what is in
// flight as lost and starts the window again.
func flood(to *net.UDPAddr, window int, deadline, start time.Time, st *stats) error {
	c, err := net.DialUDP("udp", nil, to)
	if err != nil {
		return err
	}
	defer c.Close()
	pc := ipv4.NewPacketConn(c)
	out := make([]ipv4.Message, window)
	in := make([]ipv4.Message, window)
	for i := range window {
		out[i].Buffers = [][]byte{make([]byte, 48)}
		in[i].Buffers = [][]byte{make([]byte, 512)}
	}
	send := func(k int) {
		now := time.Since(start)
		for i := range k {
			request(out[i].Buffers[0], now)
		}
		for sent := 0; sent < k; {
			n, err := pc.WriteBatch(out[sent:k], 0)
			if err != nil || n <= 0 {
				return // counted lost at the next timeout
			}
			sent += n
		}
	}
	send(window)
	reads := 0
	for {
		now := time.Now()
		if !now.Before(deadline) {
			return nil
		}
		if reads%64 == 0 {
			c.SetReadDeadline(now.Add(100 * time.Millisecond))
		}
		reads++
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			st.lost += window
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			send(window)
			continue
		}
		at := time.Since(start)
		for i := range n {
			st.reply(in[i].Buffers[0][:in[i].N], at, (st.n+reads)%16 == 0)
		}
		send(n)
	}
}

// paced sends one request every `per` from first on, waiting for each
// reply (at most 100 ms) before the next.
func paced(to *net.UDPAddr, first time.Time, per time.Duration, deadline, start time.Time, st *stats) error {
	c, err := net.DialUDP("udp", nil, to)
	if err != nil {
		return err
	}
	defer c.Close()
	req, buf := make([]byte, 48), make([]byte, 512)
	for next := first; next.Before(deadline); next = next.Add(per) {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		request(req, time.Since(start))
		if _, err := c.Write(req); err != nil {
			st.lost++
			continue
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		m, err := c.Read(buf)
		if err != nil {
			st.lost++
			continue
		}
		st.reply(buf[:m], time.Since(start), true)
	}
	return nil
}

// ntpDur reads a 64-bit NTP timestamp as a duration since its era began.
func ntpDur(b []byte) time.Duration {
	v := binary.BigEndian.Uint64(b)
	return time.Duration(v>>32)*time.Second + time.Duration((v&0xffffffff)*uint64(time.Second)>>32)
}
