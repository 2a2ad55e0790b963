package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// KeyPrefix starts every airlock API key. Keys look like
// "alk_<16 hex id>_<43 base64url secret>".
const KeyPrefix = "alk_"

// KeyInfo describes one stored API key (never the key itself).
type KeyInfo struct {
	ID      string    // public identifier, logged in audit records as "key:<ID>"
	Name    string    // label given at creation
	Created time.Time // creation time
	hash    [32]byte  // sha256 of the full key
}

// APIKeys is a set of bearer keys stored as sha256 hashes in a file with
// one "ID SHA256HEX CREATED NAME" line per key. It is safe for concurrent
// use.
type APIKeys struct {
	path string

	mu    sync.RWMutex
	keys  map[string]KeyInfo
	mtime time.Time
	size  int64
}

// LoadAPIKeys reads an API key file.
func LoadAPIKeys(path string) (*APIKeys, error) {
	k := &APIKeys{path: path}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload re-reads the file. On error the previous keys stay in force.
func (k *APIKeys) Reload() error {
	st, err := os.Stat(k.path)
	if err != nil {
		return fmt.Errorf("api keys %s: %w", k.path, err)
	}
	data, err := readLimited(k.path, maxHtpasswdBytes)
	if err != nil {
		return fmt.Errorf("api keys %s: %w", k.path, err)
	}
	keys, err := ParseAPIKeys(data)
	if err != nil {
		return fmt.Errorf("api keys %s: %w", k.path, err)
	}
	k.mu.Lock()
	k.keys, k.mtime, k.size = keys, st.ModTime(), st.Size()
	k.mu.Unlock()
	return nil
}

// ReloadIfChanged reloads the file when its modification time or size
// changed since the last load. It reports whether it reloaded.
func (k *APIKeys) ReloadIfChanged() (bool, error) {
	st, err := os.Stat(k.path)
	if err != nil {
		return false, fmt.Errorf("api keys %s: %w", k.path, err)
	}
	k.mu.RLock()
	same := st.ModTime().Equal(k.mtime) && st.Size() == k.size
	k.mu.RUnlock()
	if same {
		return false, nil
	}
	return true, k.Reload()
}

// Len returns the number of keys.
func (k *APIKeys) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys)
}

// Check returns the key's ID when token is a stored key. The comparison is
// constant-time and also runs for unknown IDs.
func (k *APIKeys) Check(token string) (id string, ok bool) {
	id, _ = parseKeyID(token)
	sum := sha256.Sum256([]byte(token))
	k.mu.RLock()
	info, found := k.keys[id]
	k.mu.RUnlock()
	want := info.hash // zero hash for unknown IDs: never matches a sha256
	match := subtle.ConstantTimeCompare(sum[:], want[:]) == 1
	if !found || !match {
		return "", false
	}
	return id, true
}

func parseKeyID(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, KeyPrefix)
	if !ok {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) != 43 {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return id, true
}

// ParseAPIKeys parses an API key file; blank lines and "#" comments are
// ignored.
func ParseAPIKeys(data []byte) (map[string]KeyInfo, error) {
	keys := map[string]KeyInfo{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, " ", 4)
		if len(f) < 3 {
			return nil, fmt.Errorf("line %d: want ID SHA256 CREATED [NAME]", n)
		}
		if len(f[0]) != 16 {
			return nil, fmt.Errorf("line %d: bad key id %q", n, f[0])
		}
		if _, err := hex.DecodeString(f[0]); err != nil {
			return nil, fmt.Errorf("line %d: bad key id %q", n, f[0])
		}
		h, err := hex.DecodeString(f[1])
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("line %d: bad sha256 for key %s", n, f[0])
		}
		created, err := time.Parse(time.RFC3339, f[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: bad creation time for key %s: %w", n, f[0], err)
		}
		if _, dup := keys[f[0]]; dup {
			return nil, fmt.Errorf("line %d: key %s listed twice", n, f[0])
		}
		info := KeyInfo{ID: f[0], Created: created}
		if len(f) == 4 {
			info.Name = f[3]
		}
		copy(info.hash[:], h)
		keys[f[0]] = info
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return keys, nil
}

// CreateKey makes a new random key named name, stores its hash in the file
// at path (created with mode 0600 if absent) and returns the key, which is
// shown once and never stored.
func CreateKey(path, name string) (token string, info KeyInfo, err error) {
	if strings.ContainsAny(name, "\r\n") || len(name) > 200 {
		return "", KeyInfo{}, errors.New("key name must be one line of at most 200 bytes")
	}
	var idb [8]byte
	var secret [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", KeyInfo{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", KeyInfo{}, err
	}
	info = KeyInfo{ID: hex.EncodeToString(idb[:]), Name: name, Created: time.Now().UTC().Truncate(time.Second)}
	token = KeyPrefix + info.ID + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	info.hash = sha256.Sum256([]byte(token))
	err = editKeys(path, func(keys map[string]KeyInfo) error {
		keys[info.ID] = info
		return nil
	})
	if err != nil {
		return "", KeyInfo{}, err
	}
	return token, info, nil
}

// RevokeKey removes the key with id from the file at path.
func RevokeKey(path, id string) error {
	return editKeys(path, func(keys map[string]KeyInfo) error {
		if _, ok := keys[id]; !ok {
			return fmt.Errorf("no key %q in %s", id, path)
		}
		delete(keys, id)
		return nil
	})
}

// ListKeys returns the keys stored at path, oldest first.
func ListKeys(path string) ([]KeyInfo, error) {
	data, err := readLimited(path, maxHtpasswdBytes)
	if err != nil {
		return nil, fmt.Errorf("api keys %s: %w", path, err)
	}
	keys, err := ParseAPIKeys(data)
	if err != nil {
		return nil, fmt.Errorf("api keys %s: %w", path, err)
	}
	return sortedKeys(keys), nil
}

func sortedKeys(keys map[string]KeyInfo) []KeyInfo {
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func editKeys(path string, edit func(map[string]KeyInfo) error) error {
	keys := map[string]KeyInfo{}
	data, err := readLimited(path, maxHtpasswdBytes)
	switch {
	case err == nil:
		if keys, err = ParseAPIKeys(data); err != nil {
			return fmt.Errorf("api keys %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return fmt.Errorf("api keys %s: %w", path, err)
	}
	if err := edit(keys); err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("# airlock API keys: ID SHA256(key) CREATED NAME\n")
	for _, k := range sortedKeys(keys) {
		fmt.Fprintf(&b, "%s %s %s", k.ID, hex.EncodeToString(k.hash[:]), k.Created.UTC().Format(time.RFC3339))
		if k.Name != "" {
			fmt.Fprintf(&b, " %s", k.Name)
		}
		b.WriteByte('\n')
	}
	return writeFileAtomic(path, b.Bytes())
}
