package mirror

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/airgapd/airgapd/internal/atomicfile"
)

// SigningKey is the site key that signs the indexes airgapd builds itself
// (an RPM repo's repomd.xml, an APT repo's Release), never a mirror's:
// mirror.signing_key, or one generated once under data_dir.
type SigningKey struct {
	Entity *openpgp.Entity
	Public []byte // the armored public key, served beside what it signs
}

// signingConfig makes keys and signatures every dnf and apt can check: an
// RSA 3072 v4 key (gpgme with GnuPG 2.2 on EL8/9 reads no RFC 9580 keys),
// SHA-256.
func signingConfig() *packet.Config {
	return &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 3072, DefaultHash: crypto.SHA256}
}

// DefaultSigningKeyPath is where the generated site key lives.
func DefaultSigningKeyPath(dataDir string) string {
	return filepath.Join(dataDir, "mirror", "signing-key.asc")
}

// keyMu: one site key generated in this process, never two.
var keyMu sync.Mutex

// LoadSigningKey loads the key at path (mirror.signing_key) or, when path
// is "", the generated key under dataDir, generating it on first use.
func LoadSigningKey(path, dataDir string, log *slog.Logger) (*SigningKey, error) {
	keyMu.Lock()
	defer keyMu.Unlock()
	if path == "" {
		path = DefaultSigningKeyPath(dataDir)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := generateKey(path); err != nil {
				return nil, fmt.Errorf("generate the repo signing key: %w", err)
			}
			if log != nil {
				log.Info("generated the repo signing key", "path", path)
			}
		}
	}
	return loadKey(path)
}

func generateKey(path string) error {
	e, err := openpgp.NewEntity("airgapd repo signing key", "", "", signingConfig())
	if err != nil {
		return err
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		return err
	}
	if err := e.SerializePrivate(w, signingConfig()); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes(), 0o600)
}

func loadKey(path string) (*SigningKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ring, err := openpgp.ReadArmoredKeyRing(f)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if len(ring) == 0 || ring[0].PrivateKey == nil {
		return nil, fmt.Errorf("signing key %s: no private key", path)
	}
	e := ring[0]
	if e.PrivateKey.Encrypted {
		return nil, fmt.Errorf("signing key %s: protected by a passphrase; export it without one", path)
	}
	pub, err := ArmorPublic(openpgp.EntityList{e})
	if err != nil {
		return nil, err
	}
	return &SigningKey{Entity: e, Public: pub}, nil
}

// ArmorPublic is the armored public keys of ring, as apt's Signed-By and
// dnf's gpgkey read them.
func ArmorPublic(ring openpgp.EntityList) ([]byte, error) {
	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	for _, e := range ring {
		if err := e.Serialize(w); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return pub.Bytes(), nil
}

// DetachSign is an armored detached signature of data (repomd.xml.asc,
// Release.gpg).
func (k *SigningKey) DetachSign(data []byte) ([]byte, error) {
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, k.Entity, bytes.NewReader(data), signingConfig()); err != nil {
		return nil, err
	}
	return sig.Bytes(), nil
}

// ClearSign is data clearsigned (an APT InRelease).
func (k *SigningKey) ClearSign(data []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := clearsign.Encode(&out, k.Entity.PrivateKey, signingConfig())
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
