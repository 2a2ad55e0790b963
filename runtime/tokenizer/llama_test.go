package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func llamaFiles(t *testing.T) (tj, cj []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "llama-bpe")
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	cj, err = os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tj, cj
}

// Ids of the llama-bpe fixture (see testdata/llama-bpe/README.md).
const (
	lUnk, lBOS, lEOS     = 0, 1, 2
	lSpace               = 259 // ▁
	lH, lE               = 260, 261
	lLLO                 = 270
	lHello, lWorld       = 271, 275
	lNi                  = 277 // 你
	lxE5, lxA5, lxBD, lx = 3 + 0xE5, 3 + 0xA5, 3 + 0xBD, 3 + 'x'
)

func TestLlamaByteFallback(t *testing.T) {
	tj, cj := llamaFiles(t)
	tok, err := Load(tj, cj)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		text string
		ids  []int
		dec  string // Decode(ids)
	}{
		// "▁hello▁world": merges in rank order ▁h, ll, ▁he, llo, ▁hello,
		// ▁w, or, ▁wor, ▁worl, ▁world.
		{"hello world", []int{lHello, lWorld}, "hello world"},
		// Prepend applies to each piece between added tokens (legacy Llama).
		{"<s>hello", []int{lBOS, lHello}, "<s> hello"},
		// 你 is in the vocabulary; 好 (E5 A5 BD) and x are not: byte fallback.
		// No merge involves ▁ followed by 你, so ▁ stays alone.
		{"你好x", []int{lSpace, lNi, lxE5, lxA5, lxBD, lx}, "你好x"},
		// A leading space becomes "▁▁hello": ▁h merges first at position 1
		// ("▁ ▁" has no merge, so ▁h at position 1 is the first merge).
		{" hello", []int{lSpace, lHello}, " hello"},
		{"", nil, ""},
		{"</s>", []int{lEOS}, "</s>"},
	}
	for _, c := range cases {
		got := tok.Encode(c.text)
		if !equalIDs(got, c.ids) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.ids)
		}
		if dec := tok.Decode(c.ids); dec != c.dec {
			t.Errorf("Decode(%v) = %q, want %q", c.ids, dec, c.dec)
		}
		if sd := streamAll(tok, c.ids); sd != c.dec {
			t.Errorf("stream decode of %v = %q, want %q", c.ids, sd, c.dec)
		}
	}
	if id, ok := tok.BOSID(); !ok || id != lBOS || !tok.AddBOS() {
		t.Errorf("BOSID = %d, %v; AddBOS = %v", id, ok, tok.AddBOS())
	}
	if id, ok := tok.EOSID(); !ok || id != lEOS {
		t.Errorf("EOSID = %d, %v", id, ok)
	}
	if got := tok.EOSIDs(); !equalIDs(got, []int{lEOS}) {
		t.Errorf("EOSIDs = %v", got)
	}
	if tok.VocabSize() != 278 {
		t.Errorf("VocabSize = %d, want 278", tok.VocabSize())
	}
}

func TestLlamaUnknownWithoutByteFallback(t *testing.T) {
	tj, cj := llamaFiles(t)
	tj = []byte(strings.Replace(string(tj), `"byte_fallback": true`, `"byte_fallback": false`, 1))
	tok, err := Load(tj, cj)
	if err != nil {
		t.Fatal(err)
	}
	// 好 and x are unknown; fuse_unk turns the two into one <unk>.
	want := []int{lSpace, lNi, lUnk}
	if got := tok.Encode("你好x"); !equalIDs(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
}

func TestLlamaNormalizedAddedToken(t *testing.T) {
	tj, cj := llamaFiles(t)
	s := string(tj)
	// Mark <s> "normalized": it is then matched after the normalizer has
	// prepended ▁ to the whole segment, so "<s>hello" becomes the pieces
	// "▁", <s>, "hello" (no ▁ before hello: h e llo).
	i := strings.Index(s, `"content": "<s>"`)
	j := i + strings.Index(s[i:], `"normalized": false`)
	if i < 0 || j < i {
		t.Fatal("fixture layout changed")
	}
	s = s[:j] + `"normalized": true` + s[j+len(`"normalized": false`):]
	tok, err := Load([]byte(s), cj)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{lSpace, lBOS, lH, lE, lLLO}
	if got := tok.Encode("<s>hello"); !equalIDs(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	// Raw-matched tokens are unaffected.
	if got := tok.Encode("</s>"); !equalIDs(got, []int{lEOS}) {
		t.Errorf("Encode(</s>) = %v", got)
	}
}

func TestLlamaMetaspace(t *testing.T) {
	tj, cj := llamaFiles(t)
	s := string(tj)
	i := strings.Index(s, `"normalizer"`)
	j := strings.Index(s, `"post_processor"`)
	for _, c := range []struct {
		pre   string
		texts map[string][]int
	}{
		{`"normalizer": null, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},`,
			map[string][]int{
				"hello world": {lHello, lWorld},
				// "first": no ▁ after an added token, so h e llo (no h+e merge).
				"<s>hello": {lBOS, lH, lE, lLLO},
			}},
		{`"normalizer": null, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": true},`,
			map[string][]int{
				// legacy add_prefix_space means "always"; split defaults to true.
				"hello world": {lHello, lWorld},
				"<s>hello":    {lBOS, lHello},
			}},
	} {
		tok, err := Load([]byte(s[:i]+c.pre+s[j:]), cj)
		if err != nil {
			t.Fatalf("%s: %v", c.pre, err)
		}
		for text, want := range c.texts {
			if got := tok.Encode(text); !equalIDs(got, want) {
				t.Errorf("%s\nEncode(%q) = %v, want %v", c.pre, text, got, want)
			}
		}
	}
}

func TestLoadRejectsBadInput(t *testing.T) {
	tj, cj := llamaFiles(t)
	s := string(tj)
	// edit replaces old (which must occur) in the fixture.
	edit := func(old, new string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("fixture does not contain %q", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	for name, bad := range map[string]string{
		"truncated":       s[:len(s)/2],
		"not BPE":         edit(`"type": "BPE"`, `"type": "Unigram"`),
		"unknown merge":   edit(`"▁ h"`, `"▁ q"`),
		"bad merge":       edit(`"▁ h"`, `"▁h"`),
		"regex replace":   edit(`"String": " "`, `"Regex": " "`),
		"unknown decoder": edit(`"type": "Fuse"`, `"type": "CTC"`),
		"unknown split":   edit(`"pre_tokenizer": null`, `"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated"}`),
		"dropout":         edit(`"dropout": null`, `"dropout": 0.1`),
		"duplicate id":    edit(`"h": 260`, `"h": 261`),
		"no vocab":        `{"model": {"type": "BPE"}}`,
		"empty":           ``,
		"unknown unk":     edit(`"unk_token": "<unk>"`, `"unk_token": "<nope>"`),
		"negative id":     edit(`"h": 260`, `"h": -1`),
	} {
		if _, err := Load([]byte(bad), cj); err == nil {
			t.Errorf("%s: Load succeeded, want an error", name)
		}
	}
	if _, err := Load(tj, []byte(`{"eos_token": "<nope>"}`)); err == nil {
		t.Error("eos_token not in vocabulary: Load succeeded")
	}
	if _, err := LoadDir(t.TempDir()); err == nil {
		t.Error("LoadDir of an empty directory succeeded")
	}
}
