package mirror

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"regexp"
	"strings"
)

// Checksum names a file's content: a hash type as repositories write it
// (sha256, sha1 or "sha" in old repos, sha512, sha384, sha224) and its hex
// digest.
type Checksum struct {
	Type  string
	Value string
}

// NewHash returns the hash a checksum type names.
func NewHash(typ string) (hash.Hash, error) {
	switch typ {
	case "sha256":
		return sha256.New(), nil
	case "sha", "sha1":
		return sha1.New(), nil
	case "sha512":
		return sha512.New(), nil
	case "sha384":
		return sha512.New384(), nil
	case "sha224":
		return sha256.New224(), nil
	}
	return nil, fmt.Errorf("unsupported checksum type %q", typ)
}

// hashName is the checksum type as a folder name.
func hashName(typ string) string {
	if typ == "sha" {
		return "sha1"
	}
	return typ
}

// Valid reports whether the checksum is a well-formed hex digest of its
// type, so it can name a file.
func (c Checksum) Valid() error {
	h, err := NewHash(c.Type)
	if err != nil {
		return err
	}
	if b, err := hex.DecodeString(c.Value); err != nil || len(b) != h.Size() {
		return fmt.Errorf("%q is not a %s digest", c.Value, c.Type)
	}
	return nil
}

// SHA256 is the checksum of a "sha256:HEX" digest (as bundles and OCI
// write them).
func SHA256(digest string) Checksum {
	return Checksum{Type: "sha256", Value: strings.TrimPrefix(digest, "sha256:")}
}

// validName is what the store accepts as a repo name: safe as a folder
// name, and what dnf accepts as a repo id.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// ValidName reports whether name can name a repo in the store.
func ValidName(name string) bool { return validName.MatchString(name) }
