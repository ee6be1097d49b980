package web

import (
	"strings"
	"testing"
)

// TestSecretsRoundTrip: the page's text hides every secret, and saving it
// as shown, edited around the secrets, or with list items reordered gives
// the saved values back; a new value typed over the mask replaces it.
func TestSecretsRoundTrip(t *testing.T) {
	const cur = `web:
  admin: { password_hash: "$2a$10$adminhashadminhashadminh" }   # keep
  metrics: { token: s3cr3t-token }
registry:
  users:
    - { name: alice, password_hash: '$2a$10$alicehash' }
    - name: bob
      password_hash: $2a$10$bobhash
  upstreams: [{ url: "http://127.0.0.1:1", password: "" }]
`
	masked, err := maskSecrets([]byte(cur))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"adminhash", "s3cr3t", "alicehash", "bobhash"} {
		if strings.Contains(string(masked), secret) {
			t.Fatalf("masked text shows %s:\n%s", secret, masked)
		}
	}
	if n := strings.Count(string(masked), secretMask); n != 4 {
		t.Errorf("%d masks, want 4:\n%s", n, masked)
	}
	if !strings.Contains(string(masked), "}   # keep") {
		t.Errorf("masking changed the bytes around a secret:\n%s", masked)
	}
	swap := strings.Replace(string(masked), "    - { name: alice", "    - { name: carol, password_hash: \"$2a$10$carolhash\" }\n    - { name: alice", 1)
	cases := []struct {
		name, text, want string
	}{
		{"as shown", string(masked), cur},
		{"edited elsewhere", strings.Replace(string(masked), "# keep", "# kept", 1), strings.Replace(cur, "# keep", "# kept", 1)},
		{"a user added before alice", swap, strings.Replace(cur, "    - { name: alice", "    - { name: carol, password_hash: \"$2a$10$carolhash\" }\n    - { name: alice", 1)},
		{"new token typed", strings.Replace(string(masked), `token: "`+secretMask+`"`, "token: newtoken", 1), strings.Replace(cur, "token: s3cr3t-token", "token: newtoken", 1)},
	}
	for _, tc := range cases {
		got, err := unmaskSecrets([]byte(tc.text), []byte(cur))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %v\n%s\nwant\n%s", tc.name, err, got, tc.want)
		}
	}
	// A mask moved to a key with no saved value is refused, not saved.
	moved := strings.Replace(string(masked), "name: bob", "name: dave", 1)
	if _, err := unmaskSecrets([]byte(moved), []byte(cur)); err == nil || !strings.Contains(err.Error(), "type the value") {
		t.Errorf("a mask with no saved value: %v", err)
	}
}
