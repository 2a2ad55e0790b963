package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// LockFormatVersion is the lock file format written by this airlock.
const LockFormatVersion = 1

// Lock pins what a recipe resolved to: the source revision and every
// model file's upstream revision, size and sha256. Bundling against an
// existing lock refuses when upstream changed.
type Lock struct {
	FormatVersion int          `json:"format_version"`
	Source        Source       `json:"source"`
	Files         []LockedFile `json:"files"`
}

// LockedFile is one pinned upstream file.
type LockedFile struct {
	Path             string `json:"path"`
	Size             int64  `json:"size"`
	SHA256           string `json:"sha256"`
	UpstreamRevision string `json:"upstream_revision,omitempty"`
}

// NewLock builds a lock from a resolved source and its files, sorted by path.
func NewLock(src Source, files []File) *Lock {
	l := &Lock{FormatVersion: LockFormatVersion, Source: src}
	for _, f := range files {
		l.Files = append(l.Files, LockedFile{Path: f.Path, Size: f.Size, SHA256: f.SHA256, UpstreamRevision: f.UpstreamRevision})
	}
	sort.Slice(l.Files, func(i, j int) bool { return l.Files[i].Path < l.Files[j].Path })
	return l
}

// Encode returns the lock as indented JSON with a trailing newline.
func (l *Lock) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseLock decodes and validates a lock file.
func ParseLock(b []byte) (*Lock, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("lock: larger than %d bytes", MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if dec.More() {
		return nil, errors.New("lock: trailing data")
	}
	if l.FormatVersion != LockFormatVersion {
		return nil, fmt.Errorf("lock: format_version %d, this airlock reads %d", l.FormatVersion, LockFormatVersion)
	}
	if l.Source.Kind == "" || l.Source.ID == "" {
		return nil, errors.New("lock: missing source kind or id")
	}
	seen := map[string]bool{}
	for _, f := range l.Files {
		if err := CheckPath(f.Path); err != nil {
			return nil, fmt.Errorf("lock: file %q: %w", f.Path, err)
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("lock: file %s listed twice", f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 || !isHex64(f.SHA256) {
			return nil, fmt.Errorf("lock: file %s: bad size or sha256", f.Path)
		}
	}
	return &l, nil
}

// LoadLock reads a lock file; a missing file gives an error satisfying
// errors.Is(err, os.ErrNotExist).
func LoadLock(file string) (*Lock, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", file, err)
	}
	l, err := ParseLock(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return l, nil
}

// Save writes the lock atomically (temp file, fsync, rename).
func (l *Lock) Save(file string) error {
	b, err := l.Encode()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".lock-*")
	if err != nil {
		return fmt.Errorf("save lock: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save lock: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save lock: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save lock: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("save lock: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("save lock: %w", err)
	}
	return nil
}

// Diff lists, one line each, how got differs from the lock l (nil: same).
func (l *Lock) Diff(got *Lock) []string {
	var d []string
	if l.Source.Kind != got.Source.Kind || l.Source.ID != got.Source.ID {
		d = append(d, fmt.Sprintf("source: locked %s:%s, now %s:%s", l.Source.Kind, l.Source.ID, got.Source.Kind, got.Source.ID))
	}
	if l.Source.Revision != got.Source.Revision {
		d = append(d, fmt.Sprintf("revision: locked %q, now %q", l.Source.Revision, got.Source.Revision))
	}
	old := map[string]LockedFile{}
	for _, f := range l.Files {
		old[f.Path] = f
	}
	now := map[string]bool{}
	for _, f := range got.Files {
		now[f.Path] = true
		o, ok := old[f.Path]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("%s: new upstream file", f.Path))
		case o.SHA256 != f.SHA256 || o.Size != f.Size:
			d = append(d, fmt.Sprintf("%s: changed upstream (sha256 %s… size %d, now %s… size %d, upstream revision %s)",
				f.Path, short(o.SHA256), o.Size, short(f.SHA256), f.Size, f.UpstreamRevision))
		case o.UpstreamRevision != f.UpstreamRevision:
			d = append(d, fmt.Sprintf("%s: upstream revision %s, now %s", f.Path, o.UpstreamRevision, f.UpstreamRevision))
		}
	}
	for _, f := range l.Files {
		if !now[f.Path] {
			d = append(d, fmt.Sprintf("%s: removed upstream", f.Path))
		}
	}
	sort.Strings(d)
	return d
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
