package fetch

import (
	"crypto/sha1" // git blob ids are SHA-1; used only to check upstream ids, never for trust on its own
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/minio/sha256-simd"
)

// Cache is a content-addressed store of verified downloads. A finished file
// lives at blobs/sha256/<hex> and is only ever placed there after its bytes
// hashed to that name; unfinished downloads live under partial/ so the next
// run resumes them.
type Cache struct {
	Dir string
}

// DefaultDir returns the cache directory used when none is given:
// $AIRLOCK_CACHE_DIR, else <user cache dir>/airlock.
func DefaultDir() (string, error) {
	if d := os.Getenv("AIRLOCK_CACHE_DIR"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	return filepath.Join(base, "airlock"), nil
}

// BlobPath is where the verified file with this sha256 is stored.
func (c *Cache) BlobPath(sha string) string {
	return filepath.Join(c.Dir, "blobs", "sha256", sha)
}

// aliasPath records the sha256 of content known by another id (a git blob id).
func (c *Cache) aliasPath(kind, id string) string {
	return filepath.Join(c.Dir, "alias", kind, id)
}

func (c *Cache) partialDir(key string) string {
	return filepath.Join(c.Dir, "partial", key)
}

// Lookup returns the cached path of a file with the given sha256 and size
// (size < 0: any), re-hashing it so a damaged cache entry is never served.
// A damaged entry is removed.
func (c *Cache) Lookup(sha string, size int64) (string, bool) {
	if !validHex(sha, 64) {
		return "", false
	}
	p := c.BlobPath(sha)
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() || (size >= 0 && st.Size() != size) {
		return "", false
	}
	sum, _, n, err := hashFile(p, false)
	if err != nil || sum != sha || (size >= 0 && n != size) {
		_ = os.Remove(p)
		return "", false
	}
	return p, true
}

// lookupAlias resolves a git blob id to a cached sha256 entry.
func (c *Cache) lookupAlias(gitOID string, size int64) (path, sha string, ok bool) {
	if !validHex(gitOID, 40) {
		return "", "", false
	}
	b, err := os.ReadFile(c.aliasPath("git", gitOID))
	if err != nil {
		return "", "", false
	}
	sha = strings.TrimSpace(string(b))
	p, ok := c.Lookup(sha, size)
	return p, sha, ok
}

// Put copies r into the cache, verifying it hashes to wantSHA (when set),
// and returns the stored path and sha256.
func (c *Cache) Put(r io.Reader, wantSHA string) (string, string, error) {
	dir := filepath.Join(c.Dir, "partial")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("cache put: %w", err)
	}
	f, err := os.CreateTemp(dir, "put-*")
	if err != nil {
		return "", "", fmt.Errorf("cache put: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		f.Close()
		return "", "", fmt.Errorf("cache put: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("cache put: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if wantSHA != "" && sum != wantSHA {
		return "", "", &IntegrityError{Want: wantSHA, Got: sum}
	}
	p, err := c.commit(tmp, sum)
	return p, sum, err
}

// commit moves a verified file into its content address.
func (c *Cache) commit(tmp, sha string) (string, error) {
	dst := c.BlobPath(sha)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("cache commit: %w", err)
	}
	_ = os.Chmod(tmp, 0o444)
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("cache commit: %w", err)
	}
	return dst, nil
}

func (c *Cache) writeAlias(gitOID, sha string) error {
	p := c.aliasPath("git", gitOID)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(sha+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// IntegrityError reports content that does not hash to what upstream listed.
type IntegrityError struct {
	Name      string
	Kind      string // "sha256", "git blob id" or "size"
	Want, Got string
}

// Error names the file and both checksums.
func (e *IntegrityError) Error() string {
	kind := e.Kind
	if kind == "" {
		kind = "sha256"
	}
	name := e.Name
	if name == "" {
		name = "content"
	}
	return fmt.Sprintf("%s: %s mismatch: upstream lists %s, downloaded bytes give %s", name, kind, e.Want, e.Got)
}

// digest hashes content as it is written: sha256 and, optionally, the
// git blob id (which needs the size up front).
type digest struct {
	h, g hash.Hash
	n    int64
}

func newDigest(size int64, withGit bool) *digest {
	d := &digest{h: sha256.New()}
	if withGit {
		d.g = sha1.New()
		fmt.Fprintf(d.g, "blob %s\x00", strconv.FormatInt(size, 10))
	}
	return d
}

func (d *digest) Write(p []byte) (int, error) {
	d.h.Write(p)
	if d.g != nil {
		d.g.Write(p)
	}
	d.n += int64(len(p))
	return len(p), nil
}

func (d *digest) sums() (sha, gitOID string) {
	sha = hex.EncodeToString(d.h.Sum(nil))
	if d.g != nil {
		gitOID = hex.EncodeToString(d.g.Sum(nil))
	}
	return sha, gitOID
}

// hashFile returns the sha256 (and, if withGit, the git blob id) of a file.
func hashFile(p string, withGit bool) (sha, gitOID string, n int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", "", 0, err
	}
	d := newDigest(st.Size(), withGit)
	n, err = io.Copy(d, f)
	if err != nil {
		return "", "", n, err
	}
	if n != st.Size() {
		return "", "", n, errors.New("file changed while hashing")
	}
	sha, gitOID = d.sums()
	return sha, gitOID, n, nil
}

func validHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
