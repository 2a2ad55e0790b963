// Package source defines where bundle content comes from. A Source resolves
// to a Snapshot: a pinned revision and the files in it, each of which can be
// opened for reading. Implementations: a local directory (package
// source/local), ModelScope and Hugging Face–compatible hubs.
package source

import (
	"context"
	"io"

	"github.com/airlock-dev/airlock/manifests"
)

// Source is a place a model can be bundled from.
type Source interface {
	// Resolve pins the revision and lists the files to bundle. Remote
	// sources may download (into a verified cache) before returning.
	Resolve(ctx context.Context) (*Snapshot, error)
}

// Snapshot is a resolved source: the manifest's source record and its files.
type Snapshot struct {
	Source manifests.Source
	Files  []File
}

// File is one file of a snapshot.
type File struct {
	// Entry carries path, size, role, platform and upstream revision. Its
	// SHA256, when set, is the upstream checksum: the bundler must refuse a
	// file whose bytes do not hash to it.
	Entry manifests.File
	// Open returns the file's bytes. The bundler reads them once, hashing
	// while it compresses.
	Open func(ctx context.Context) (io.ReadCloser, error)
}
