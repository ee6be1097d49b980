package rpm

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/airgapd/airgapd/mirror"
)

// signer signs local repos' repomd.xml with the site key (the store's
// SigningKey, which APT indexes share).
type signer struct{ *mirror.SigningKey }

// defaultKeyPath is where the generated key lives.
func defaultKeyPath(dataDir string) string { return mirror.DefaultSigningKeyPath(dataDir) }

// signingKey loads mirror.signing_key, or the generated key under data_dir,
// generating it on first use.
func (m *Mirror) signingKey(cfg Config) (*signer, error) {
	k, err := mirror.LoadSigningKey(cfg.SigningKey, m.deps.DataDir, m.log)
	if err != nil {
		return nil, err
	}
	return &signer{k}, nil
}

// signRepomd writes repomd.xml.asc (a detached armored signature of
// repomd) and repomd.xml.key (the public key) into repodata.
func (s *signer) signRepomd(repodata string, repomd []byte) error {
	sig, err := s.DetachSign(repomd)
	if err != nil {
		return fmt.Errorf("sign repomd.xml: %w", err)
	}
	if err := os.WriteFile(filepath.Join(repodata, "repomd.xml.asc"), sig, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(repodata, "repomd.xml.key"), s.Public, 0o644)
}
