// Package bundle carries published repos, folders of files and container
// images across the air gap in one verified file (docs/BUNDLE.md): a tar
// whose first entry is a manifest listing every item with its SHA-256,
// followed by the content-addressed blobs, each once, optionally split into
// parts and zstd-compressed.
//
// It sits above the formats and the store: Create reads repos' published
// trees through mirror/rpm's exported API (Published, under each repo's
// lock), Import verifies every blob into staging before anything is
// published and then publishes each repo through rpm's PublishImported
// (the store's PublishTree: pool, snapshot, one rename), the files into
// mirror.files by rename, and the images through ImageStore, an interface
// server satisfies with the registry (this package imports no registry).
// A killed import run again reuses every verified blob.
package bundle

import (
	"log/slog"
	"path/filepath"

	"github.com/airgapd/airgapd/mirror/rpm"
)

// Deps is what a Carrier works with.
type Deps struct {
	Logger  *slog.Logger
	DataDir string // data_dir: bundle/ holds the staging and what was imported
	// FreeSpace, when set, replaces statfs in import's check that the
	// bundle fits (tests fake a full disk with it).
	FreeSpace FreeSpaceFunc
}

// Carrier creates and imports bundles for one instance: its RPM mirror
// (the repos to read and to publish into) and its data_dir.
type Carrier struct {
	repos     *rpm.Mirror
	log       *slog.Logger
	dataDir   string
	freeSpace FreeSpaceFunc
}

// New returns a Carrier over the instance's mirror.
func New(repos *rpm.Mirror, deps Deps) *Carrier {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Carrier{repos: repos, log: deps.Logger, dataDir: deps.DataDir, freeSpace: deps.FreeSpace}
}

// dir is data_dir/bundle: staging/ID/ (blobs being verified),
// imported/HEX.json (each imported bundle's manifest), lock.
func (c *Carrier) dir() string { return filepath.Join(c.dataDir, "bundle") }
