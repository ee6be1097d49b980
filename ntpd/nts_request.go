package ntpd

import (
	"crypto/rand"
	"encoding/binary"
	"errors"

	ntpproto "github.com/facebook/time/ntp/protocol"
	"github.com/facebook/time/ntp/protocol/nts"
	"github.com/facebook/time/ntp/protocol/nts/aessiv"
)

// The NTS part of the packet path (RFC 8915 section 5), after
// facebook/time's responder (ntp/responder/server/nts.go, unexported
// there): open the cookie, verify the authenticator over the header and
// the fields before it, answer with the unique identifier echoed and fresh
// cookies encrypted in the reply's authenticator.

// ntsRequest is a parsed NTS request: what the reply needs.
type ntsRequest struct {
	uid          []byte
	aead         ntpproto.AEADAlgorithm
	c2s, s2c     []byte
	placeholders int
	cookieLen    int
}

var (
	errNTSMalformed = errors.New("malformed")
	errNTSCookie    = errors.New("cookie")
	errNTSAuth      = errors.New("auth")
)

// parseNTS checks q's NTS fields and the request authenticator.
func parseNTS(ks *keyRing, q *ntpproto.Packet) (*ntsRequest, error) {
	var (
		r       ntsRequest
		cookie  []byte
		authIdx = -1
	)
	for i := range q.ExtensionFields {
		ef := &q.ExtensionFields[i]
		switch ef.Type {
		case ntpproto.UniqueIdentifier:
			if r.uid != nil || cookie != nil || len(ef.Body) < nts.MinUniqueIdentifierLen {
				return nil, errNTSMalformed
			}
			r.uid = ef.Body
		case ntpproto.NTSCookie:
			if cookie != nil {
				return nil, errNTSMalformed
			}
			cookie = ef.Body
		case ntpproto.NTSCookiePlaceholder:
			if cookie != nil && len(ef.Body) >= len(cookie) {
				r.placeholders++
			}
		case ntpproto.NTSAuthenticator:
			authIdx = i
		}
		if authIdx >= 0 {
			break // fields after the authenticator are not authenticated: ignored
		}
	}
	if r.uid == nil || cookie == nil || authIdx < 0 {
		return nil, errNTSMalformed
	}
	r.cookieLen = len(cookie)
	var err error
	if r.aead, r.c2s, r.s2c, err = ks.OpenCookie(cookie); err != nil {
		return &r, errNTSCookie // r.uid for the NAK
	}
	ad, err := q.AssociatedData(authIdx)
	if err != nil {
		return nil, errNTSMalformed
	}
	c2s, err := newNTSAEAD(r.aead, r.c2s)
	if err != nil {
		return nil, errNTSCookie
	}
	if _, err := c2s.open(ad, q.ExtensionFields[authIdx]); err != nil {
		return nil, errNTSAuth
	}
	return &r, nil
}

// ntsAEAD is the authenticator's AEAD. facebook/time's nts.NewAEAD takes
// AES-SIV-CMAC as deterministic, without the nonce chrony sends, so for
// algorithm 15 its aessiv package is used with the nonce as the last S2V
// component, as RFC 8915 section 5.6 and chrony (nettle's
// siv_cmac_aes128_encrypt_message) have it; AES-128-GCM-SIV (30) uses its
// nonce natively through nts.NewAEAD.
type ntsAEAD struct {
	siv *aessiv.AESSIV
	gcm nts.AEAD
}

func newNTSAEAD(a ntpproto.AEADAlgorithm, key []byte) (*ntsAEAD, error) {
	if a == ntpproto.AEADAESSIVCMAC256 {
		siv, err := aessiv.NewAESSIV(key)
		return &ntsAEAD{siv: siv}, err
	}
	gcm, err := nts.NewAEAD(a, key)
	return &ntsAEAD{gcm: gcm}, err
}

func (x *ntsAEAD) open(ad []byte, ef ntpproto.ExtensionField) ([]byte, error) {
	if x.gcm != nil {
		return nts.OpenAuthenticator(x.gcm, ad, ef)
	}
	b, err := nts.ParseAuthenticatorBody(ef.Body)
	if err != nil {
		return nil, err
	}
	if len(b.Nonce) == 0 {
		return x.siv.Open(nil, b.Ciphertext, ad)
	}
	return x.siv.Open(nil, b.Ciphertext, ad, b.Nonce)
}

func (x *ntsAEAD) seal(ad, plaintext []byte) (ntpproto.ExtensionField, error) {
	if x.gcm != nil {
		return nts.SealAuthenticator(x.gcm, ad, plaintext)
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return ntpproto.ExtensionField{}, err
	}
	ct, err := x.siv.Seal(nil, plaintext, ad, nonce)
	if err != nil {
		return ntpproto.ExtensionField{}, err
	}
	body, err := nts.MarshalAuthenticatorBody(nonce, ct)
	return ntpproto.ExtensionField{Type: ntpproto.NTSAuthenticator, Body: body}, err
}

// sealNTS adds the unique identifier and an authenticator holding fresh
// cookies (one for the spent cookie, one per placeholder) to the reply a,
// whose header is final, and writes it into out. The reply is kept no
// larger than the request (fewer cookies when needed): no amplification.
func sealNTS(ks *keyRing, r *ntsRequest, a *ntpproto.Packet, reqLen int, out []byte) (int, error) {
	s2c, err := newNTSAEAD(r.aead, r.s2c)
	if err != nil {
		return 0, err
	}
	for n := min(1+r.placeholders, 8); ; n-- {
		cookies := make([]ntpproto.ExtensionField, 0, n)
		for range n {
			c, err := ks.SealCookie(r.aead, r.c2s, r.s2c)
			if err != nil {
				return 0, err
			}
			cookies = append(cookies, nts.NewCookie(c))
		}
		enc, err := ntpproto.MarshalExtensionFields(cookies)
		if err != nil {
			return 0, err
		}
		a.ExtensionFields = []ntpproto.ExtensionField{nts.NewUniqueIdentifier(r.uid)}
		ad, err := a.AssociatedData(1)
		if err != nil {
			return 0, err
		}
		auth, err := s2c.seal(ad, enc)
		if err != nil {
			return 0, err
		}
		a.ExtensionFields = append(a.ExtensionFields, auth)
		b, err := a.Bytes()
		if err != nil {
			return 0, err
		}
		if (len(b) <= reqLen || n <= 1) && len(b) <= len(out) {
			return copy(out, b), nil
		}
		if n <= 1 {
			return 0, errors.New("reply too large")
		}
	}
}

// refidNTSN is the kiss code of an NTS NAK: the cookie did not open, so
// the client does the key exchange again.
var refidNTSN = binary.BigEndian.Uint32([]byte("NTSN"))

// ntsNAK writes a KoD NTSN echoing the unique identifier (RFC 8915
// section 5.7), unauthenticated as the RFC has it.
func ntsNAK(a *ntpproto.Packet, uid []byte, out []byte) int {
	a.Settings = leapUnknown<<6 | a.Settings&0x3f
	a.Stratum = 0
	a.ReferenceID = refidNTSN
	a.ExtensionFields = []ntpproto.ExtensionField{nts.NewUniqueIdentifier(uid)}
	b, err := a.Bytes()
	if err != nil || len(b) > len(out) {
		return 0
	}
	return copy(out, b)
}
