package ntpd

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"

	"github.com/facebook/time/ntp/ntske"
	ntpproto "github.com/facebook/time/ntp/protocol"
)

// NTS-KE (RFC 8915 section 4) on the sockets server hands in. facebook/time's
// ntske.Server opens its own listener, so the exchange is written here from
// its exported parts: records (ntske.Parse, MarshalRecords, New*), the
// cookie envelope (through keyRing) and the AEAD IDs.

const (
	keExporterLabel = "EXPORTER-network-time-security"
	keTimeout       = 10 * time.Second
	keMaxMessage    = 64 * 1024
	keCookies       = 8
	// keParallel bounds the exchanges in progress; more connections wait
	// in the listen backlog.
	keParallel = 64
)

// NTS-KE error codes (RFC 8915 section 4.1.3).
const (
	keErrUnrecognizedCritical uint16 = 0
	keErrBadRequest           uint16 = 1
	keErrInternal             uint16 = 2
)

// keAEADs are the AEAD algorithms offered, in the server's order of
// preference when the client lists several: AES-SIV-CMAC-256 (15, the one
// RFC 8915 makes mandatory and chrony 4.3 speaks) and AES-128-GCM-SIV (30,
// chrony 4.4 and later). AES-SIV-CMAC-512 (17) is not: no client offers it
// and facebook/time has no nonce-taking implementation of it.
var keAEADs = []ntpproto.AEADAlgorithm{ntpproto.AEADAESSIVCMAC256, ntpproto.AEADAES128GCMSIV}

func keKeyLen(a ntpproto.AEADAlgorithm) int {
	switch a {
	case ntpproto.AEADAES128GCMSIV:
		return 16
	case ntpproto.AEADAESSIVCMAC256:
		return 32
	case ntpproto.AEADAESSIVCMAC512:
		return 64
	}
	return 0
}

// keFailure is a failed exchange: reason is the metrics label.
type keFailure struct {
	reason string
	code   int // NTS-KE error code to send, -1 for none
	err    error
}

func (f *keFailure) Error() string { return f.reason + ": " + f.err.Error() }

// serveKE accepts NTS-KE connections on ln until it is closed.
func (s *Server) serveKE(ln net.Listener) {
	slots := make(chan struct{}, keParallel)
	for {
		slots <- struct{}{}
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			<-slots
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func() {
			defer func() { <-slots }()
			s.handleKE(c)
		}()
	}
}

func (s *Server) handleKE(raw net.Conn) {
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(keTimeout))
	cfg := s.nts.tls.Clone()
	cfg.MinVersion = tls.VersionTLS13
	cfg.NextProtos = []string{ntske.ALPNProtocol}
	conn := tls.Server(raw, cfg)
	err := s.keExchange(conn)
	var f *keFailure
	if err == nil {
		s.nts.count(&s.nts.handshakes)
		return
	}
	if !errors.As(err, &f) {
		f = &keFailure{reason: "internal", code: -1, err: err}
	}
	s.nts.fail("ke_" + f.reason)
	if f.code >= 0 {
		b, _ := ntske.MarshalRecords([]ntske.Record{ntske.NewError(uint16(f.code)), ntske.NewEndOfMessage()})
		conn.Write(b)
	}
	s.log.Debug("NTS-KE failed", "client", raw.RemoteAddr().String(), "reason", f.reason, "err", f.err)
}

func (s *Server) keExchange(conn *tls.Conn) error {
	if err := conn.Handshake(); err != nil {
		return &keFailure{reason: "tls", code: -1, err: err}
	}
	cs := conn.ConnectionState()
	if cs.NegotiatedProtocol != ntske.ALPNProtocol {
		return &keFailure{reason: "alpn", code: -1, err: fmt.Errorf("client did not ask for %s", ntske.ALPNProtocol)}
	}
	records, err := readKEMessage(conn)
	if err != nil {
		return &keFailure{reason: "read", code: int(keErrBadRequest), err: err}
	}
	aead, compliant, ferr := keNegotiate(records)
	if ferr != nil {
		return ferr
	}
	resp, err := s.keResponse(cs, aead, compliant)
	if err != nil {
		return &keFailure{reason: "internal", code: int(keErrInternal), err: err}
	}
	b, err := ntske.MarshalRecords(resp)
	if err != nil {
		return &keFailure{reason: "internal", code: -1, err: err}
	}
	if _, err := conn.Write(b); err != nil {
		return &keFailure{reason: "write", code: -1, err: err}
	}
	return nil
}

// readKEMessage reads records up to End of Message.
func readKEMessage(r io.Reader) ([]ntske.Record, error) {
	var buf []byte
	hdr := make([]byte, 4)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(hdr[2:]))
		if len(buf)+4+n > keMaxMessage {
			return nil, fmt.Errorf("request over %d octets", keMaxMessage)
		}
		buf = append(buf, hdr...)
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		buf = append(buf, body...)
		if binary.BigEndian.Uint16(hdr)&0x7fff == ntske.RecordEndOfMessage {
			return ntske.Parse(buf)
		}
	}
}

// keNegotiate checks a request (RFC 8915 section 4.1) and picks the AEAD.
func keNegotiate(records []ntske.Record) (ntpproto.AEADAlgorithm, bool, *keFailure) {
	bad := func(reason, format string, a ...any) *keFailure {
		return &keFailure{reason: reason, code: int(keErrBadRequest), err: fmt.Errorf(format, a...)}
	}
	var protos, aeads []uint16
	sawProto, sawAEAD, compliant := false, false, false
	for _, r := range records {
		var err error
		switch r.Type {
		case ntske.RecordEndOfMessage, ntske.RecordServerNegotiation, ntske.RecordPortNegotiation, ntske.RecordWarning, ntske.RecordError, ntske.RecordNewCookie:
		case ntske.RecordNextProtocol:
			if sawProto {
				return 0, false, bad("bad_request", "two next-protocol records")
			}
			sawProto = true
			protos, err = ntske.ParseUint16s(r.Body)
		case ntske.RecordAEADAlgorithm:
			if sawAEAD {
				return 0, false, bad("bad_request", "two AEAD records")
			}
			sawAEAD = true
			aeads, err = ntske.ParseUint16s(r.Body)
		case ntske.RecordCompliant128GCMExport:
			compliant = true
		default:
			if r.Critical {
				return 0, false, &keFailure{reason: "bad_request", code: int(keErrUnrecognizedCritical), err: fmt.Errorf("unknown critical record %d", r.Type)}
			}
		}
		if err != nil {
			return 0, false, bad("bad_request", "record %d: %v", r.Type, err)
		}
	}
	if !slices.Contains(protos, ntske.NextProtocolNTPv4) {
		return 0, false, bad("bad_request", "no NTPv4 in the next-protocol record")
	}
	for _, a := range keAEADs {
		if slices.Contains(aeads, uint16(a)) {
			return a, compliant, nil
		}
	}
	return 0, false, bad("no_aead", "none of the client's AEAD algorithms %v is supported (15 and 30 are)", aeads)
}

func (s *Server) keResponse(cs tls.ConnectionState, aead ntpproto.AEADAlgorithm, compliant bool) ([]ntske.Record, error) {
	n := keKeyLen(aead)
	// chrony before 4.5 derived AES-128-GCM-SIV keys with the context of
	// algorithm 15 (RFC 8915 erratum); a client that sends the
	// compliant-export record uses the algorithm's own ID.
	ctxID := uint16(aead)
	if aead == ntpproto.AEADAES128GCMSIV && !compliant {
		ctxID = uint16(ntpproto.AEADAESSIVCMAC256)
	}
	export := func(dir byte) ([]byte, error) {
		c := []byte{0, 0, byte(ctxID >> 8), byte(ctxID), dir}
		return cs.ExportKeyingMaterial(keExporterLabel, c, n)
	}
	c2s, err := export(0)
	if err != nil {
		return nil, err
	}
	s2c, err := export(1)
	if err != nil {
		return nil, err
	}
	recs := []ntske.Record{ntske.NewNextProtocol(ntske.NextProtocolNTPv4), ntske.NewAEADAlgorithm(uint16(aead))}
	if compliant && aead == ntpproto.AEADAES128GCMSIV {
		recs = append(recs, ntske.NewCompliant128GCMExport())
	}
	if p := s.nts.ntpPort; p != 0 && p != 123 {
		recs = append(recs, ntske.NewPortNegotiation(p))
	}
	for range keCookies {
		c, err := s.nts.keys.SealCookie(aead, c2s, s2c)
		if err != nil {
			return nil, err
		}
		recs = append(recs, ntske.NewCookie(c))
	}
	return append(recs, ntske.NewEndOfMessage()), nil
}

// ntsKeysPath is the key ring's file, empty without a data_dir.
func ntsKeysPath(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return Dir(dataDir) + string(os.PathSeparator) + ntsKeysFile
}
