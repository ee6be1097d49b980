// Package udpbatch reads UDP datagrams a batch per system call and sends
// the replies of a batch together, with no allocation per packet: on Linux
// recvmmsg and sendmmsg on buffers, headers and addresses made once per
// Conn (x/net's batch calls make a net.UDPAddr for every datagram, which a
// server answering 100k+ packets a second pays for in GC). dnsd and ntpd
// both read this way; where there is no recvmmsg, x/net reads one datagram
// per call and replies leave one by one.
//
// A Conn belongs to one reader goroutine: Read, then Packet and Queue for
// each datagram of the batch, then Flush.
package udpbatch
