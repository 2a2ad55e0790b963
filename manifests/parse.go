package manifests

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Layout of the manifest inside a bundle and inside an installed directory.
const (
	// MetaDir is the reserved directory holding the signed manifest. No
	// bundled file may live under it.
	MetaDir = ".airlock"
	// ManifestPath is the manifest's path, in bundles and installed
	// directories alike.
	ManifestPath = MetaDir + "/manifest.json"
	// SignaturePath is the manifest signature's path (minisign format).
	SignaturePath = ManifestPath + ".minisig"
)

// Limits that keep a hostile manifest from exhausting memory.
const (
	MaxManifestSize = 16 << 20 // bytes of JSON
	MaxFiles        = 100000
	MaxPathLen      = 1024
	MaxNameLen      = 200
	MaxTotalSize    = 1 << 50 // 1 PiB: keeps size sums far from overflow
)

// Encode returns the canonical JSON of m (two-space indent, trailing
// newline): the exact bytes that are signed.
func Encode(m *Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse decodes and validates a manifest. Unknown fields, trailing data and
// any invalid entry are errors: a manifest either means exactly one thing
// or is refused.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("manifest: %d bytes exceeds the %d byte limit", len(data), MaxManifestSize)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("manifest: not valid UTF-8")
	}
	var probe struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("manifest: malformed JSON: %w", err)
	}
	if probe.FormatVersion == nil {
		return nil, errors.New("manifest: missing format_version")
	}
	if *probe.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("manifest: format_version %d is not supported (this airlock reads %d)", *probe.FormatVersion, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: malformed JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("manifest: trailing data after the JSON object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks every field of m: format version, name, source, and for
// each file a safe relative path, a non-negative size, a sha256 in lowercase
// hex, a known role and a well-formed platform. Paths must be unique (also
// ignoring case, for case-insensitive file systems), must not be both a
// file and a directory, must not use the reserved .airlock directory, and
// must be sorted, which fixes the bundle's entry order.
func (m *Manifest) Validate() error {
	if m.FormatVersion != FormatVersion {
		return fmt.Errorf("manifest: format_version %d is not supported (this airlock reads %d)", m.FormatVersion, FormatVersion)
	}
	if err := checkText("name", m.Name, MaxNameLen, true); err != nil {
		return err
	}
	if m.CreatedAt.IsZero() {
		return errors.New("manifest: missing created_at")
	}
	if err := checkText("source.kind", m.Source.Kind, 64, true); err != nil {
		return err
	}
	if err := checkText("source.id", m.Source.ID, 512, true); err != nil {
		return err
	}
	if err := checkText("source.revision", m.Source.Revision, 256, false); err != nil {
		return err
	}
	if err := checkText("tool.name", m.Tool.Name, 64, true); err != nil {
		return err
	}
	if err := checkText("tool.version", m.Tool.Version, 128, true); err != nil {
		return err
	}
	if len(m.Files) > MaxFiles {
		return fmt.Errorf("manifest: %d files exceeds the limit of %d", len(m.Files), MaxFiles)
	}
	folded := make(map[string]string, len(m.Files))
	var total int64
	for i := range m.Files {
		f := &m.Files[i]
		if err := f.Validate(); err != nil {
			return err
		}
		if f.Size > MaxTotalSize-total {
			return fmt.Errorf("manifest: file %s: total size exceeds %d bytes", f.Path, int64(MaxTotalSize))
		}
		total += f.Size
		if i > 0 && m.Files[i-1].Path >= f.Path {
			if m.Files[i-1].Path == f.Path {
				return fmt.Errorf("manifest: file %s: listed twice", f.Path)
			}
			return fmt.Errorf("manifest: file %s: not in sorted order (after %s)", f.Path, m.Files[i-1].Path)
		}
		key := strings.ToLower(f.Path)
		if prev, ok := folded[key]; ok {
			return fmt.Errorf("manifest: file %s: differs from %s only in case", f.Path, prev)
		}
		folded[key] = f.Path
	}
	// A path must not also be a directory of another path ("a" and "a/b").
	for _, f := range m.Files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if prev, ok := folded[strings.ToLower(dir)]; ok {
				return fmt.Errorf("manifest: file %s: its directory %s is also a file (%s)", f.Path, dir, prev)
			}
		}
	}
	return nil
}

// Validate checks one file entry; errors name the file.
func (f *File) Validate() error {
	if err := CheckPath(f.Path); err != nil {
		return fmt.Errorf("manifest: file %q: %w", f.Path, err)
	}
	if f.Size < 0 {
		return fmt.Errorf("manifest: file %s: negative size %d", f.Path, f.Size)
	}
	if len(f.SHA256) != 64 || strings.ToLower(f.SHA256) != f.SHA256 {
		return fmt.Errorf("manifest: file %s: sha256 must be 64 lowercase hex digits", f.Path)
	}
	if _, err := hex.DecodeString(f.SHA256); err != nil {
		return fmt.Errorf("manifest: file %s: sha256 must be 64 lowercase hex digits", f.Path)
	}
	switch f.Role {
	case RoleWeights, RoleTokenizer, RoleConfig, RoleRuntime, RoleExtra:
	default:
		return fmt.Errorf("manifest: file %s: unknown role %q", f.Path, f.Role)
	}
	if f.Platform != "" {
		osName, arch, ok := strings.Cut(f.Platform, "/")
		if !ok || !isToken(osName) || !isToken(arch) {
			return fmt.Errorf("manifest: file %s: platform %q is not os/arch", f.Path, f.Platform)
		}
	}
	if f.Role == RoleRuntime && f.Platform == "" {
		return fmt.Errorf("manifest: file %s: runtime file without a platform", f.Path)
	}
	if err := checkText("upstream_revision", f.UpstreamRevision, 256, false); err != nil {
		return fmt.Errorf("manifest: file %s: %w", f.Path, err)
	}
	return nil
}

// CheckPath reports whether p is a safe bundle path: relative,
// slash-separated, clean (no "", ".", ".." elements, no backslashes), made
// of printable characters, and outside the reserved .airlock directory.
func CheckPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > MaxPathLen:
		return fmt.Errorf("path longer than %d bytes", MaxPathLen)
	case !utf8.ValidString(p):
		return errors.New("path is not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return errors.New("absolute path")
	case strings.Contains(p, "\\"):
		return errors.New("backslash in path")
	case len(p) >= 2 && p[1] == ':':
		return errors.New("drive letter in path")
	}
	for _, r := range p {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("control or non-printable character %q in path", r)
		}
	}
	for _, el := range strings.Split(p, "/") {
		switch el {
		case "":
			return errors.New("empty path element")
		case ".", "..":
			return fmt.Errorf("%q element in path", el)
		}
	}
	if p == MetaDir || strings.HasPrefix(strings.ToLower(p), MetaDir+"/") || strings.EqualFold(p, MetaDir) {
		return fmt.Errorf("path inside the reserved %s directory", MetaDir)
	}
	return nil
}

func checkText(field, s string, maxLen int, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("manifest: missing %s", field)
		}
		return nil
	}
	if len(s) > maxLen {
		return fmt.Errorf("manifest: %s longer than %d bytes", field, maxLen)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("manifest: %s contains the non-printable character %q", field, r)
		}
	}
	return nil
}

func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// TotalSize is the sum of all file sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Lookup returns the entry for path p, or nil.
func (m *Manifest) Lookup(p string) *File {
	for i := range m.Files {
		if m.Files[i].Path == p {
			return &m.Files[i]
		}
	}
	return nil
}

// CreatedAtUTC normalises a creation time the way manifests store it:
// UTC, whole seconds.
func CreatedAtUTC(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }
