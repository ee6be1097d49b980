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
	"context"
	"log/slog"
	"path/filepath"

	"github.com/airgapd/airgapd/mirror"
	"github.com/airgapd/airgapd/mirror/rpm"
)

// TreeFormat is one format's published trees as bundles carry them (APT
// repos, the PyPI index, the Go proxy's modules), each the format's own
// service; the RPM mirror is the Carrier's own (New's repos).
type TreeFormat interface {
	// Names are the trees this instance has (the configured ones).
	Names() []string
	Store(name string) mirror.Store
	// Published lists a tree, holding its lock until Release.
	Published(ctx context.Context, name string) (mirror.Published, error)
	// PublishImported publishes files as the tree, marked as imported.
	PublishImported(ctx context.Context, name string, origin mirror.Origin, files []mirror.TreeFile, place mirror.PlaceFunc) error
}

// Deps is what a Carrier works with.
type Deps struct {
	Logger  *slog.Logger
	DataDir string // data_dir: bundle/ holds the staging and what was imported
	// Formats are the formats beside RPM this instance runs, by their
	// config section's name (apt, pypi, goproxy).
	Formats map[string]TreeFormat
	// FreeSpace, when set, replaces statfs in import's check that the
	// bundle fits (tests fake a full disk with it).
	FreeSpace FreeSpaceFunc
}

// Carrier creates and imports bundles for one instance: its RPM mirror
// (the repos to read and to publish into) and its data_dir.
type Carrier struct {
	repos     *rpm.Mirror
	formats   map[string]TreeFormat
	log       *slog.Logger
	dataDir   string
	freeSpace FreeSpaceFunc
}

// New returns a Carrier over the instance's mirror.
func New(repos *rpm.Mirror, deps Deps) *Carrier {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Carrier{repos: repos, formats: deps.Formats, log: deps.Logger, dataDir: deps.DataDir, freeSpace: deps.FreeSpace}
}

// storeOf is the content store of a bundle's tree on this instance.
func (c *Carrier) storeOf(r Repo) mirror.Store {
	if f, ok := c.formats[r.Format]; ok && r.Format != "" {
		return f.Store(r.Name)
	}
	return c.repos.Store(r.Name)
}

// itemName is how a tree is named in messages and results: "site" for an
// RPM repo, "apt site" for another format's.
func itemName(r Repo) string {
	if r.Format == "" {
		return r.Name
	}
	return r.Format + " " + r.Name
}

// dir is data_dir/bundle: staging/ID/ (blobs being verified),
// imported/HEX.json (each imported bundle's manifest), lock.
func (c *Carrier) dir() string { return filepath.Join(c.dataDir, "bundle") }
