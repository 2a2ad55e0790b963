package verify

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	sha256simd "github.com/minio/sha256-simd"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/manifests"
)

// DirOptions configure CheckDir.
type DirOptions struct {
	// FullHashes re-hashes every file; otherwise only presence, type and
	// size are checked (fast enough for every server start).
	FullHashes bool
	// Progress, when set, receives progress while hashing.
	Progress io.Writer
}

// Problem is one file that does not match the signed manifest.
type Problem struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Report is the result of checking an installed directory.
type Report struct {
	Dir        string              `json:"dir"`
	Manifest   *manifests.Manifest `json:"-"`
	Name       string              `json:"name"`
	SignerKey  string              `json:"signer_key"`
	FullHashes bool                `json:"full_hashes"`
	Files      int                 `json:"files"`
	Bytes      int64               `json:"bytes"`
	Missing    []string            `json:"missing"`
	Modified   []Problem           `json:"modified"`
	Unexpected []string            `json:"unexpected"`
}

// OK reports whether the directory matches its signed manifest.
func (r *Report) OK() bool {
	return len(r.Missing) == 0 && len(r.Modified) == 0 && len(r.Unexpected) == 0
}

// Err summarises the problems as one error naming every file (nil if OK).
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	var parts []string
	for _, p := range r.Missing {
		parts = append(parts, p+": missing")
	}
	for _, p := range r.Modified {
		parts = append(parts, p.Path+": modified ("+p.Reason+")")
	}
	for _, p := range r.Unexpected {
		parts = append(parts, p+": unexpected file, not in the signed manifest")
	}
	return fmt.Errorf("%s does not match its signed manifest: %s", r.Dir, strings.Join(parts, "; "))
}

// LoadInstalledManifest reads DIR/.airlock/manifest.json, checks its
// signature with pub, and parses it.
func LoadInstalledManifest(dir string, pub signing.PublicKey) (*manifests.Manifest, signing.Signature, error) {
	body, err := readLimited(filepath.Join(dir, filepath.FromSlash(manifests.ManifestPath)), manifests.MaxManifestSize)
	if err != nil {
		return nil, signing.Signature{}, fmt.Errorf("signed manifest: %w (not a verified airlock directory?)", err)
	}
	sig, err := readLimited(filepath.Join(dir, filepath.FromSlash(manifests.SignaturePath)), 4<<10)
	if err != nil {
		return nil, signing.Signature{}, fmt.Errorf("manifest signature: %w", err)
	}
	s, err := signing.Verify(pub, body, sig)
	if err != nil {
		return nil, signing.Signature{}, fmt.Errorf("%s: %w", manifests.ManifestPath, err)
	}
	m, err := manifests.Parse(body)
	if err != nil {
		return nil, signing.Signature{}, fmt.Errorf("%s: %w", manifests.ManifestPath, err)
	}
	return m, s, nil
}

func readLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, limit)
	}
	return b, nil
}

// CheckDir re-checks an installed directory against its signed manifest:
// the signature (with pub), then every file's presence, type and size (and
// sha256 with FullHashes), and any file the manifest does not list. The
// .airlock directory itself is not reported. It returns an error when the
// directory cannot be trusted; the report (non-nil once the manifest
// verified) names every missing, modified and unexpected file.
func CheckDir(dir string, pub signing.PublicKey, opts DirOptions) (*Report, error) {
	m, sig, err := LoadInstalledManifest(dir, pub)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", dir, err)
	}
	rep := &Report{
		Dir: dir, Manifest: m, Name: m.Name, SignerKey: signing.KeyID(sig.KeyID),
		FullHashes: opts.FullHashes, Files: len(m.Files), Bytes: m.TotalSize(),
		Missing: []string{}, Modified: []Problem{}, Unexpected: []string{},
	}
	listed := make(map[string]bool, len(m.Files))
	dirs := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
		for d := filepath.ToSlash(filepath.Dir(f.Path)); d != "."; d = filepath.ToSlash(filepath.Dir(d)) {
			dirs[d] = true
		}
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case rel == manifests.MetaDir && d.IsDir():
			return fs.SkipDir
		case d.IsDir() && dirs[rel]:
			return nil
		case d.IsDir():
			rep.Unexpected = append(rep.Unexpected, rel+"/")
			return fs.SkipDir
		case !listed[rel]:
			rep.Unexpected = append(rep.Unexpected, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", dir, err)
	}

	var toHash []manifests.File
	for _, f := range m.Files {
		st, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f.Path)))
		switch {
		case errors.Is(err, os.ErrNotExist):
			rep.Missing = append(rep.Missing, f.Path)
		case err != nil:
			rep.Modified = append(rep.Modified, Problem{f.Path, err.Error()})
		case !st.Mode().IsRegular():
			rep.Modified = append(rep.Modified, Problem{f.Path, "not a regular file (" + st.Mode().Type().String() + ")"})
		case st.Size() != f.Size:
			rep.Modified = append(rep.Modified, Problem{f.Path, fmt.Sprintf("size %d, signed manifest says %d", st.Size(), f.Size)})
		default:
			toHash = append(toHash, f)
		}
	}
	if opts.FullHashes {
		rep.Modified = append(rep.Modified, hashAll(dir, toHash, opts.Progress)...)
	}
	sort.Strings(rep.Unexpected)
	sort.Slice(rep.Modified, func(i, j int) bool { return rep.Modified[i].Path < rep.Modified[j].Path })
	return rep, rep.Err()
}

// hashAll hashes files on all cores and returns those that do not match.
func hashAll(dir string, files []manifests.File, progressOut io.Writer) []Problem {
	var total int64
	for _, f := range files {
		total += f.Size
	}
	var bar *progress.Bar
	if progressOut != nil {
		bar = progress.New(progressOut, "check "+filepath.Base(dir), total)
		defer bar.Finish(nil)
	}
	var (
		mu       sync.Mutex
		problems []Problem
		wg       sync.WaitGroup
		next     = make(chan manifests.File)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunkSize)
			for f := range next {
				if reason := hashFile(filepath.Join(dir, filepath.FromSlash(f.Path)), f, buf, bar); reason != "" {
					mu.Lock()
					problems = append(problems, Problem{f.Path, reason})
					mu.Unlock()
				}
			}
		}()
	}
	for _, f := range files {
		next <- f
	}
	close(next)
	wg.Wait()
	return problems
}

func hashFile(p string, f manifests.File, buf []byte, bar *progress.Bar) string {
	fh, err := os.Open(p)
	if err != nil {
		return err.Error()
	}
	defer fh.Close()
	h := sha256simd.New()
	var w io.Writer = h
	if bar != nil {
		w = io.MultiWriter(h, bar)
	}
	n, err := io.CopyBuffer(w, fh, buf)
	if err != nil {
		return "read: " + err.Error()
	}
	if n != f.Size {
		return fmt.Sprintf("size %d, signed manifest says %d", n, f.Size)
	}
	want, _ := hex.DecodeString(f.SHA256)
	if subtle.ConstantTimeCompare(h.Sum(nil), want) != 1 {
		return "sha256 does not match the signed manifest"
	}
	return ""
}
