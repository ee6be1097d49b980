package rpm

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/airgapd/airgapd/internal/atomicfile"
)

// signer signs local repos' repomd.xml with one OpenPGP key.
type signer struct {
	entity *openpgp.Entity
	public []byte // armored public key, served as repodata/repomd.xml.key
}

// keyConfig makes keys and signatures every dnf can check: an RSA 3072
// v4 key (gpgme with GnuPG 2.2 on EL8/9 reads no RFC 9580 keys), SHA-256.
func keyConfig() *packet.Config {
	return &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 3072, DefaultHash: crypto.SHA256}
}

// defaultKeyPath is where the generated key lives.
func defaultKeyPath(dataDir string) string {
	return filepath.Join(dataDir, "mirror", "signing-key.asc")
}

// signingKey loads mirror.signing_key, or the generated key under data_dir,
// generating it on first use. Holding m.keyMu, so two indexes never make
// two keys.
func (m *Mirror) signingKey(cfg Config) (*signer, error) {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	path := cfg.SigningKey
	if path == "" {
		path = defaultKeyPath(m.deps.DataDir)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := generateKey(path); err != nil {
				return nil, fmt.Errorf("generate the repo signing key: %w", err)
			}
			m.log.Info("generated the repo signing key", "path", path)
		}
	}
	return loadKey(path)
}

func generateKey(path string) error {
	e, err := openpgp.NewEntity("airgapd repo signing key", "", "", keyConfig())
	if err != nil {
		return err
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		return err
	}
	if err := e.SerializePrivate(w, keyConfig()); err != nil {
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

func loadKey(path string) (*signer, error) {
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
	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := e.Serialize(w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return &signer{entity: e, public: pub.Bytes()}, nil
}

// signRepomd writes repomd.xml.asc (a detached armored signature of
// repomd) and repomd.xml.key (the public key) into repodata.
func (s *signer) signRepomd(repodata string, repomd []byte) error {
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, s.entity, bytes.NewReader(repomd), keyConfig()); err != nil {
		return fmt.Errorf("sign repomd.xml: %w", err)
	}
	if err := os.WriteFile(filepath.Join(repodata, "repomd.xml.asc"), sig.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(repodata, "repomd.xml.key"), s.public, 0o644)
}
