package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShippedQwenRecipe(t *testing.T) {
	r, err := LoadRecipe("qwen1.5-0.5b-chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r.Source != "modelscope://qwen/Qwen1.5-0.5B-Chat" || r.Revision != "master" {
		t.Fatalf("recipe %+v", r)
	}
	if r.Lock != "qwen1.5-0.5b-chat.lock.json" {
		t.Fatalf("lock path %q", r.Lock)
	}
	real := []string{"config.json", "configuration.json", "generation_config.json", "model.safetensors",
		"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "LICENSE", "README.md"}
	for _, p := range real {
		if !MatchGlobs(r.Include, r.Exclude, p) {
			t.Errorf("recipe drops %s", p)
		}
	}
	for _, p := range []string{".gitattributes", "pytorch_model.bin"} {
		if MatchGlobs(r.Include, r.Exclude, p) {
			t.Errorf("recipe keeps %s", p)
		}
	}
	if strings.Join(r.Platforms, ",") != "linux/amd64,linux/arm64" {
		t.Fatalf("platforms %v", r.Platforms)
	}
}

func TestLoadRecipeResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.yaml")
	src := "source: ./model\nextras:\n  - path: docs/guide.pdf\n    sha256: " + strings.Repeat("a", 64) + "\nlock: locks/r.json\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRecipe(p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Source != filepath.Join(dir, "model") || r.Extras[0].Path != filepath.Join(dir, "docs/guide.pdf") || r.Lock != filepath.Join(dir, "locks/r.json") {
		t.Fatalf("%+v", r)
	}
	if r.Extras[0].DestPath() != "extra/guide.pdf" {
		t.Fatal(r.Extras[0].DestPath())
	}
}

func TestParseRecipeRejects(t *testing.T) {
	for name, src := range map[string]string{
		"empty":           "",
		"no source":       "revision: master\n",
		"unknown field":   "source: x\nsorce: y\n",
		"bad glob":        "source: x\ninclude: ['[']\n",
		"bad platform":    "source: x\nplatforms: [linux]\n",
		"upper platform":  "source: x\nplatforms: [Linux/AMD64]\n",
		"http extra":      "source: x\nextras: [{url: 'http://e.com/a', sha256: '" + strings.Repeat("a", 64) + "'}]\n",
		"unpinned url":    "source: x\nextras: [{url: 'https://e.com/a'}]\n",
		"bad sha":         "source: x\nextras: [{path: a, sha256: xyz}]\n",
		"escaping dest":   "source: x\nextras: [{path: a, dest: ../a}]\n",
		"path and url":    "source: x\nextras: [{path: a, url: 'https://e.com/a', sha256: '" + strings.Repeat("a", 64) + "'}]\n",
		"two documents":   "source: x\n---\nsource: y\n",
		"not a map":       "- a\n",
		"control in name": "source: x\nname: \"a\\x01\"\n",
	} {
		if _, err := ParseRecipe([]byte(src)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMatchGlobs(t *testing.T) {
	for _, tc := range []struct {
		inc, exc []string
		p        string
		want     bool
	}{
		{nil, nil, "a/b.json", true},
		{[]string{"*.json"}, nil, "a/b.json", true},
		{[]string{"a/*.json"}, nil, "b/b.json", false},
		{[]string{"*.json"}, []string{"b.json"}, "a/b.json", false},
		{nil, []string{".git*"}, ".gitattributes", false},
	} {
		if got := MatchGlobs(tc.inc, tc.exc, tc.p); got != tc.want {
			t.Errorf("MatchGlobs(%v,%v,%q) = %v", tc.inc, tc.exc, tc.p, got)
		}
	}
}

func FuzzParseRecipe(f *testing.F) {
	b, _ := os.ReadFile("qwen1.5-0.5b-chat.yaml")
	f.Add(b)
	f.Add([]byte("source: x\nextras: [{path: a, dest: b/c}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecipe(data)
		if err != nil {
			return
		}
		if r.Source == "" {
			t.Fatal("accepted recipe without source")
		}
		for _, e := range r.Extras {
			if err := CheckPath(e.DestPath()); err != nil && e.Dest != "" {
				t.Fatalf("accepted unsafe dest %q", e.Dest)
			}
		}
	})
}
