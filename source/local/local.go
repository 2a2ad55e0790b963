// Package local is the bundle source for a model directory on local disk.
package local

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
)

// Dir is a Source that bundles every regular file below a directory.
type Dir struct {
	Root string
	// Name is recorded as the source id; the directory's base name if empty.
	Name string
}

// Resolve walks the directory. Symlinks, devices and other non-regular files
// are refused, naming the path, because a bundle carries regular files only.
func (d Dir) Resolve(ctx context.Context) (*source.Snapshot, error) {
	root, err := filepath.Abs(d.Root)
	if err != nil {
		return nil, fmt.Errorf("local source %s: %w", d.Root, err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("local source: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("local source %s: not a directory", d.Root)
	}
	var files []source.File
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if rel != "." && strings.HasPrefix(path.Base(rel), ".") {
				return fs.SkipDir // .git, .airlock, caches
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("local source: %s: not a regular file (%s)", rel, e.Type())
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		abs := p
		files = append(files, source.File{
			Entry: manifests.File{Path: rel, Size: info.Size(), Role: RoleOf(rel)},
			Open: func(context.Context) (io.ReadCloser, error) {
				return os.Open(abs)
			},
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("local source %s: %w", d.Root, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Entry.Path < files[j].Entry.Path })
	name := d.Name
	if name == "" {
		name = filepath.Base(root)
	}
	return &source.Snapshot{
		Source: manifests.Source{Kind: "local", ID: name},
		Files:  files,
	}, nil
}

// RoleOf guesses a model file's role from its name.
func RoleOf(p string) manifests.Role {
	base := strings.ToLower(path.Base(p))
	switch {
	case strings.HasPrefix(p, "bin/"):
		return manifests.RoleRuntime
	case strings.HasSuffix(base, ".safetensors"), strings.HasSuffix(base, ".bin"),
		strings.HasSuffix(base, ".gguf"), base == "model.safetensors.index.json":
		return manifests.RoleWeights
	case strings.HasPrefix(base, "tokenizer"), base == "vocab.json", base == "merges.txt",
		base == "special_tokens_map.json":
		return manifests.RoleTokenizer
	case strings.HasSuffix(base, ".json"):
		return manifests.RoleConfig
	default:
		return manifests.RoleExtra
	}
}
