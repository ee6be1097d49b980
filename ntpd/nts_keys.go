package ntpd

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/facebook/time/ntp/ntske"
	ntpproto "github.com/facebook/time/ntp/protocol"
)

// ntsKeysFile holds the NTS cookie master keys under data_dir/ntp, so
// cookies handed out before a restart still open after it and clients need
// not redo the key exchange.
const ntsKeysFile = "nts-keys.json"

// Cookie key ring: a new master key every ntsKeyRotation, the last
// ntsKeysKept kept, so a cookie stays good for at least two rotations
// (chrony's clients refresh theirs with every exchange anyway).
const (
	ntsKeyRotation = 24 * time.Hour
	ntsKeysKept    = 3
)

type ntsKey struct {
	ID      uint32    `json:"id"`
	Key     []byte    `json:"key"` // 64 octets, AES-SIV-CMAC-512
	Created time.Time `json:"created"`
}

type ntsKeyFile struct {
	Keys []ntsKey `json:"keys"` // oldest first; the last one seals
}

// keyRing is an ntske.Keystore whose master keys live in a file (or only
// in memory when path is empty). Cookies are sealed and opened with
// facebook/time's envelope (ntske.SealEnvelope, ntske.ParseCookie), the
// layout chrony's server uses.
type keyRing struct {
	path string
	now  func() time.Time
	rand io.Reader

	mu   sync.RWMutex
	keys []ntsKey
}

var _ ntske.Keystore = (*keyRing)(nil)

// openKeyRing loads the ring from path (empty: in memory) and rotates it if
// its newest key is due.
func openKeyRing(path string, now func() time.Time) (*keyRing, error) {
	r := &keyRing{path: path, now: now, rand: rand.Reader}
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			var f ntsKeyFile
			if err := json.Unmarshal(b, &f); err != nil {
				return nil, fmt.Errorf("nts key ring %s: %w; delete it to start a new one (clients then redo the key exchange)", path, err)
			}
			for _, k := range f.Keys {
				if len(k.Key) != ntske.MasterKeyLen() {
					return nil, fmt.Errorf("nts key ring %s: key %d is %d octets, want %d; delete the file to start a new one", path, k.ID, len(k.Key), ntske.MasterKeyLen())
				}
			}
			r.keys = f.Keys
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("nts key ring: %w", err)
		}
	}
	if _, err := r.rotateIfDue(); err != nil {
		return nil, err
	}
	return r, nil
}

// rotateIfDue adds a new sealing key when there is none or the newest is a
// rotation period old, drops the oldest beyond ntsKeysKept, and saves.
func (r *keyRing) rotateIfDue() (bool, error) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.keys); n > 0 {
		age := now.Sub(r.keys[n-1].Created)
		if age < ntsKeyRotation && age > -ntsKeyRotation {
			return false, nil
		}
	}
	k := ntsKey{Key: make([]byte, ntske.MasterKeyLen()), Created: now.UTC()}
	if _, err := io.ReadFull(r.rand, k.Key); err != nil {
		return false, fmt.Errorf("nts key ring: new key: %w", err)
	}
	k.ID = 1
	if n := len(r.keys); n > 0 {
		k.ID = r.keys[n-1].ID + 1
	}
	keys := append(append([]ntsKey(nil), r.keys...), k)
	if len(keys) > ntsKeysKept {
		keys = keys[len(keys)-ntsKeysKept:]
	}
	if r.path != "" {
		b, err := json.Marshal(ntsKeyFile{Keys: keys})
		if err != nil {
			return false, err
		}
		if err := writeAtomic(r.path, b); err != nil {
			return false, fmt.Errorf("nts key ring: save %s: %w; check data_dir is writable", r.path, err)
		}
	}
	r.keys = keys
	return true, nil
}

// current is the sealing key's ID and creation time.
func (r *keyRing) current() (uint32, time.Time) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k := r.keys[len(r.keys)-1]
	return k.ID, k.Created
}

func (r *keyRing) SealCookie(aead ntpproto.AEADAlgorithm, c2s, s2c []byte) ([]byte, error) {
	r.mu.RLock()
	k := r.keys[len(r.keys)-1]
	r.mu.RUnlock()
	return ntske.SealEnvelope(r.rand, k.ID, k.Key, aead, c2s, s2c)
}

func (r *keyRing) OpenCookie(cookie []byte) (ntpproto.AEADAlgorithm, []byte, []byte, error) {
	c, err := ntske.ParseCookie(cookie)
	if err != nil {
		return 0, nil, nil, err
	}
	r.mu.RLock()
	var master []byte
	for _, k := range r.keys {
		if k.ID == c.KeyID {
			master = k.Key
		}
	}
	r.mu.RUnlock()
	if master == nil {
		return 0, nil, nil, fmt.Errorf("%w: key %d", ntske.ErrUnknownKeyID, c.KeyID)
	}
	return c.Open(master)
}
