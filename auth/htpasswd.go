// Package auth checks who is calling airlock serve: HTTP basic auth against
// an htpasswd file of bcrypt entries, bearer API keys stored as sha256
// hashes, and throttling of failed attempts per client address and per user.
// Checks take the same time whether or not a user or key exists.
package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// BcryptCost is the cost airlock uses for new htpasswd entries (`htpasswd
// -B` defaults to 5; airlock is stricter). Tests may lower it.
var BcryptCost = 12

// cacheTTL is how long a verified user/password pair skips bcrypt.
const cacheTTL = 5 * time.Minute

// maxCache bounds the verified-credentials cache.
const maxCache = 4096

// maxHtpasswdBytes bounds the htpasswd file size read into memory.
const maxHtpasswdBytes = 16 << 20

// Htpasswd is a set of users with bcrypt password hashes loaded from an
// htpasswd file. It reloads the file when it changes (see Watch) or on
// Reload. It is safe for concurrent use.
type Htpasswd struct {
	path string

	mu    sync.RWMutex
	users map[string][]byte
	dummy []byte // compared against for unknown users, at the file's highest cost
	mtime time.Time
	size  int64

	// Verified pairs, keyed by HMAC-SHA256(cacheKey, user NUL password), so
	// a client sending the same credentials on every request pays bcrypt
	// once per cacheTTL. Cleared on reload.
	cacheMu  sync.Mutex
	cacheKey [32]byte
	cache    map[[32]byte]time.Time
	cacheGen uint64 // bumped on reload; stale verifications are not cached
}

// LoadHtpasswd reads an htpasswd file. Every entry must be bcrypt
// ($2y$, $2a$ or $2b$, as written by `htpasswd -B` or `airlock user add`);
// other schemes are refused because they are too weak.
func LoadHtpasswd(path string) (*Htpasswd, error) {
	h := &Htpasswd{path: path}
	if err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// Reload re-reads the file. On error (including a file without users) the
// previous users stay in force.
func (h *Htpasswd) Reload() error {
	st, err := os.Stat(h.path)
	if err != nil {
		return fmt.Errorf("htpasswd %s: %w", h.path, err)
	}
	data, err := readLimited(h.path, maxHtpasswdBytes)
	if err != nil {
		return fmt.Errorf("htpasswd %s: %w", h.path, err)
	}
	users, err := ParseHtpasswd(data)
	if err != nil {
		return fmt.Errorf("htpasswd %s: %w", h.path, err)
	}
	if len(users) == 0 {
		// Also what a reader sees while a tool rewrites the file in place.
		return fmt.Errorf("htpasswd %s: no users", h.path)
	}
	cost := bcrypt.MinCost
	for _, hash := range users {
		if c, err := bcrypt.Cost(hash); err == nil && c > cost {
			cost = c
		}
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	dummy, err := bcrypt.GenerateFromPassword(secret[:16], cost)
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	h.mu.Lock()
	h.users, h.dummy, h.mtime, h.size = users, dummy, st.ModTime(), st.Size()
	h.mu.Unlock()
	h.cacheMu.Lock()
	h.cacheKey, h.cache = secret, map[[32]byte]time.Time{}
	h.cacheGen++
	h.cacheMu.Unlock()
	return nil
}

// ReloadIfChanged reloads the file when its modification time or size
// changed since the last load. It reports whether it reloaded.
func (h *Htpasswd) ReloadIfChanged() (bool, error) {
	st, err := os.Stat(h.path)
	if err != nil {
		return false, fmt.Errorf("htpasswd %s: %w", h.path, err)
	}
	h.mu.RLock()
	same := st.ModTime().Equal(h.mtime) && st.Size() == h.size
	h.mu.RUnlock()
	if same {
		return false, nil
	}
	return true, h.Reload()
}

// Len returns the number of users.
func (h *Htpasswd) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users)
}

// Check reports whether user and password match an entry. It runs a bcrypt
// comparison even for unknown users, so timing does not reveal which users
// exist.
func (h *Htpasswd) Check(user, password string) bool {
	h.cacheMu.Lock()
	mac := hmac.New(sha256.New, h.cacheKey[:])
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var key [32]byte
	copy(key[:], mac.Sum(nil))
	exp, hit := h.cache[key]
	gen := h.cacheGen
	h.cacheMu.Unlock()
	if hit && time.Now().Before(exp) {
		return true
	}
	h.mu.RLock()
	hash, ok := h.users[user]
	dummy := h.dummy
	h.mu.RUnlock()
	if !ok {
		_ = bcrypt.CompareHashAndPassword(dummy, []byte(password))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	h.cacheMu.Lock()
	if gen == h.cacheGen {
		if len(h.cache) >= maxCache {
			clear(h.cache)
		}
		h.cache[key] = time.Now().Add(cacheTTL)
	}
	h.cacheMu.Unlock()
	return true
}

// ParseHtpasswd parses htpasswd content: "user:hash" lines, blank lines and
// "#" comments ignored. It refuses non-bcrypt hashes, duplicate users and
// malformed lines, naming the line.
func ParseHtpasswd(data []byte) (map[string][]byte, error) {
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("line %d: want user:hash", n)
		}
		if err := ValidUserName(user); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q listed twice", n, user)
		}
		if !isBcrypt(hash) {
			return nil, fmt.Errorf("line %d: user %q: only bcrypt hashes are accepted (create entries with `htpasswd -B` or `airlock user add`)", n, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d: user %q: bad bcrypt hash: %w", n, user, err)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

func isBcrypt(h string) bool {
	return strings.HasPrefix(h, "$2y$") || strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$")
}

// ValidUserName checks a user name: 1-64 printable ASCII characters, no
// colon or whitespace.
func ValidUserName(user string) error {
	if user == "" || len(user) > 64 {
		return errors.New("user name must be 1 to 64 characters")
	}
	for _, r := range user {
		if r <= ' ' || r >= 0x7f || r == ':' {
			return fmt.Errorf("user name %q: only printable ASCII without ':' or spaces", user)
		}
	}
	return nil
}

// SetUser adds or replaces user in the htpasswd file at path (created with
// mode 0600 if absent), hashing password with bcrypt. The file is replaced
// atomically.
func SetUser(path, user, password string) error {
	if err := ValidUserName(user); err != nil {
		return err
	}
	if len(password) < 8 {
		return errors.New("password must be at least 8 characters")
	}
	if len(password) > 72 {
		return errors.New("password must be at most 72 bytes (bcrypt limit)")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return editHtpasswd(path, func(users map[string][]byte) error {
		users[user] = hash
		return nil
	})
}

// RemoveUser deletes user from the htpasswd file at path.
func RemoveUser(path, user string) error {
	return editHtpasswd(path, func(users map[string][]byte) error {
		if _, ok := users[user]; !ok {
			return fmt.Errorf("no user %q in %s", user, path)
		}
		delete(users, user)
		return nil
	})
}

// ListUsers returns the user names in the htpasswd file at path, sorted.
func ListUsers(path string) ([]string, error) {
	data, err := readLimited(path, maxHtpasswdBytes)
	if err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", path, err)
	}
	users, err := ParseHtpasswd(data)
	if err != nil {
		return nil, fmt.Errorf("htpasswd %s: %w", path, err)
	}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	return names, nil
}

func editHtpasswd(path string, edit func(map[string][]byte) error) error {
	users := map[string][]byte{}
	data, err := readLimited(path, maxHtpasswdBytes)
	switch {
	case err == nil:
		if users, err = ParseHtpasswd(data); err != nil {
			return fmt.Errorf("htpasswd %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return fmt.Errorf("htpasswd %s: %w", path, err)
	}
	if err := edit(users); err != nil {
		return err
	}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, u := range names {
		fmt.Fprintf(&b, "%s:%s\n", u, users[u])
	}
	return writeFileAtomic(path, b.Bytes())
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("file is larger than %d bytes", limit)
	}
	var b bytes.Buffer
	_, err = b.ReadFrom(f)
	return b.Bytes(), err
}

// writeFileAtomic writes data to a temporary file beside path (mode 0600),
// syncs it and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
