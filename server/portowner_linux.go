package server

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// portHolder is a process holding a socket, as /proc tells it.
type portHolder struct {
	PID  int
	Name string // /proc/PID/comm, e.g. named, chronyd, nginx
}

func (h portHolder) String() string { return fmt.Sprintf("%s (pid %d)", h.Name, h.PID) }

// portHolders finds the processes with a listening TCP socket or a bound UDP
// socket on port: /proc/net/{tcp,tcp6,udp,udp6} give the socket inodes,
// /proc/PID/fd links name the processes holding them. Without permission to
// read other processes' fds (not root) it finds nothing, and the caller says
// how to look by hand.
func portHolders(network, port string) []portHolder {
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil
	}
	inodes := map[string]bool{}
	for _, table := range []string{network, network + "6"} {
		for _, ino := range socketInodes("/proc/net/"+table, network, p) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return nil
	}
	return processesHolding(inodes)
}

// socketInodes reads one /proc/net table and returns the inodes of sockets
// bound to port: TCP in LISTEN (state 0A), UDP in any state.
func socketInodes(path, network string, port int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		local, state, inode := fields[1], fields[3], fields[9]
		i := strings.LastIndexByte(local, ':')
		if i < 0 {
			continue
		}
		lp, err := strconv.ParseUint(local[i+1:], 16, 16)
		if err != nil || int(lp) != port {
			continue
		}
		if network == "tcp" && state != "0A" {
			continue
		}
		if inode != "0" {
			out = append(out, inode)
		}
	}
	return out
}

func processesHolding(inodes map[string]bool) []portHolder {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var out []portHolder
	for _, dir := range procs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil || pid == os.Getpid() {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
				out = append(out, portHolder{PID: pid, Name: strings.TrimSpace(string(comm))})
				break
			}
		}
	}
	return out
}
