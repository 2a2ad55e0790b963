package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxRecipeSize bounds a recipe file.
const MaxRecipeSize = 1 << 20

// Recipe says what to bundle: a source, a revision, which of its files,
// the runtime platforms and extra artifacts. Recipes are YAML files; the
// ones shipped with airlock live in this directory.
type Recipe struct {
	// Name names the bundle (defaults to the model name).
	Name string `yaml:"name,omitempty"`
	// Source is "modelscope://owner/name", "hf://owner/name" or a
	// local directory path (relative to the recipe file).
	Source string `yaml:"source"`
	// Revision pins the upstream branch, tag or commit.
	Revision string `yaml:"revision,omitempty"`
	// Endpoint overrides the hub endpoint (a mirror).
	Endpoint string `yaml:"endpoint,omitempty"`
	// Include and Exclude are globs (path.Match syntax) over file paths;
	// a glob without "/" also matches a file's base name. Empty Include
	// means every file; Exclude wins over Include.
	Include []string `yaml:"include,omitempty"`
	Exclude []string `yaml:"exclude,omitempty"`
	// Platforms are the os/arch runtime targets, e.g. linux/amd64.
	Platforms []string `yaml:"platforms,omitempty"`
	// Extras are additional files carried in the bundle.
	Extras []Extra `yaml:"extras,omitempty"`
	// Lock is the lock file path, relative to the recipe; defaults to the
	// recipe path with ".lock.json" in place of ".yaml".
	Lock string `yaml:"lock,omitempty"`
}

// Extra is an additional artifact: a local file or an https URL, pinned by
// sha256 (required for URLs), placed at Dest in the bundle.
type Extra struct {
	Path   string `yaml:"path,omitempty"`
	URL    string `yaml:"url,omitempty"`
	SHA256 string `yaml:"sha256,omitempty"`
	// Dest is the path inside the bundle; "extra/<base name>" if empty.
	Dest string `yaml:"dest,omitempty"`
}

// LoadRecipe reads and validates a recipe file. Relative local paths in
// it (source directory, extras, lock) are resolved against the recipe's
// directory.
func LoadRecipe(file string) (*Recipe, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("recipe: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxRecipeSize+1))
	if err != nil {
		return nil, fmt.Errorf("recipe %s: %w", file, err)
	}
	r, err := ParseRecipe(b)
	if err != nil {
		return nil, fmt.Errorf("recipe %s: %w", file, err)
	}
	dir := filepath.Dir(file)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, filepath.FromSlash(p))
	}
	if !strings.Contains(r.Source, "://") {
		r.Source = rel(r.Source)
	}
	for i := range r.Extras {
		r.Extras[i].Path = rel(r.Extras[i].Path)
	}
	if r.Lock == "" {
		r.Lock = strings.TrimSuffix(strings.TrimSuffix(file, ".yaml"), ".yml") + ".lock.json"
	} else {
		r.Lock = rel(r.Lock)
	}
	return r, nil
}

// ParseRecipe decodes a recipe strictly (unknown fields are errors) and
// validates it.
func ParseRecipe(b []byte) (*Recipe, error) {
	if len(b) > MaxRecipeSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxRecipeSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var r Recipe
	if err := dec.Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty recipe")
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks the recipe's fields.
func (r *Recipe) Validate() error {
	if strings.TrimSpace(r.Source) == "" {
		return errors.New("missing source")
	}
	if err := checkText("name", r.Name, MaxNameLen, false); err != nil {
		return err
	}
	if err := checkText("revision", r.Revision, 256, false); err != nil {
		return err
	}
	for _, g := range append(append([]string{}, r.Include...), r.Exclude...) {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return fmt.Errorf("bad glob %q", g)
		}
	}
	for _, p := range r.Platforms {
		if err := CheckPlatform(p); err != nil {
			return err
		}
	}
	for i, e := range r.Extras {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("extras[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate checks one extra artifact.
func (e *Extra) Validate() error {
	switch {
	case e.Path == "" && e.URL == "":
		return errors.New("needs path or url")
	case e.Path != "" && e.URL != "":
		return errors.New("has both path and url")
	case e.URL != "" && !strings.HasPrefix(e.URL, "https://"):
		return fmt.Errorf("url %q is not https", e.URL)
	case e.URL != "" && e.SHA256 == "":
		return fmt.Errorf("url %s has no pinned sha256", e.URL)
	case e.SHA256 != "" && !isHex64(e.SHA256):
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", e.SHA256)
	}
	if e.Dest != "" {
		if err := CheckPath(e.Dest); err != nil {
			return fmt.Errorf("dest %q: %w", e.Dest, err)
		}
	}
	return nil
}

// DestPath is where the extra lands in the bundle.
func (e *Extra) DestPath() string {
	if e.Dest != "" {
		return e.Dest
	}
	name := e.Path
	if e.URL != "" {
		name = e.URL
		if i := strings.IndexAny(name, "?#"); i >= 0 {
			name = name[:i]
		}
	}
	return "extra/" + path.Base(filepath.ToSlash(name))
}

// CheckPlatform accepts "os/arch" made of lowercase letters, digits and _.
func CheckPlatform(p string) error {
	osName, arch, ok := strings.Cut(p, "/")
	if !ok || !isToken(osName) || !isToken(arch) {
		return fmt.Errorf("platform %q is not os/arch (e.g. linux/amd64)", p)
	}
	return nil
}

// MatchGlobs reports whether p is selected by include (empty: all) and not
// excluded. A glob without "/" also matches p's base name.
func MatchGlobs(include, exclude []string, p string) bool {
	match := func(globs []string) bool {
		for _, g := range globs {
			if ok, _ := path.Match(g, p); ok {
				return true
			}
			if !strings.Contains(g, "/") {
				if ok, _ := path.Match(g, path.Base(p)); ok {
					return true
				}
			}
		}
		return false
	}
	if match(exclude) {
		return false
	}
	return len(include) == 0 || match(include)
}

func isHex64(s string) bool {
	if len(s) != 64 {
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
