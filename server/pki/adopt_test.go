package pki

import (
	"bytes"
	"crypto/x509"
	"path/filepath"
	"testing"
)

// TestAdopt: a standby takes its primary's CA and key; its server
// certificate is reissued from that CA at once, and the files hold it for
// the next start.
func TestAdopt(t *testing.T) {
	clk := newClock()
	primary := mustOpen(t, testOptions(t, filepath.Join(t.TempDir(), "pki"), clk))
	dir := filepath.Join(t.TempDir(), "pki")
	standby := mustOpen(t, testOptions(t, dir, clk))
	key, err := primary.CAKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := mustOpen(t, testOptions(t, filepath.Join(t.TempDir(), "pki"), clk)).CAKeyPEM()
	for _, tc := range []struct {
		name      string
		cert, key []byte
	}{
		{"garbage certificate", []byte("nope"), key},
		{"garbage key", primary.CACertPEM(), []byte("nope")},
		{"another CA's key", primary.CACertPEM(), other},
	} {
		if err := standby.Adopt(tc.cert, tc.key); err == nil {
			t.Errorf("%s: Adopt took it", tc.name)
		}
	}
	if err := standby.Adopt(primary.CACertPEM(), key); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(standby.CACertPEM(), primary.CACertPEM()) {
		t.Fatal("the standby serves another CA")
	}
	if _, err := currentLeaf(t, standby).Verify(x509.VerifyOptions{Roots: caPool(t, primary), DNSName: "localhost"}); err != nil {
		t.Errorf("the standby's server certificate is not from the adopted CA: %v", err)
	}
	again := mustOpen(t, testOptions(t, dir, clk))
	if !bytes.Equal(again.CACertPEM(), primary.CACertPEM()) {
		t.Error("after a restart the standby has its old CA again")
	}
	if err := standby.Adopt(primary.CACertPEM(), key); err != nil {
		t.Errorf("adopting the CA in use: %v", err)
	}
}
