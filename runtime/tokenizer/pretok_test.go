package tokenizer

import (
	"reflect"
	"testing"
)

// Expected splits worked out by hand from each regex's alternatives.
func TestSplitters(t *testing.T) {
	cases := []struct {
		name string
		sp   splitter
		in   string
		want []string
	}{
		{"gpt2", knownRegex[gpt2Pattern], "Hello world's 12345  x\n",
			[]string{"Hello", " world", "'s", " 12345", " ", " x", "\n"}},
		// GPT-2's contractions are case-sensitive: 'S is punctuation then a letter.
		{"gpt2 case", knownRegex[gpt2Pattern], "IT'S", []string{"IT", "'", "S"}},
		{"llama3 digits", knownRegex[llama3Pattern], "12345 abc", []string{"123", "45", " abc"}},
		{"qwen digits", knownRegex[qwen2Pattern], "12345 abc", []string{"1", "2", "3", "4", "5", " abc"}},
		// \s*[\r\n]+ takes whitespace up to the last newline; \s+(?!\S)
		// leaves the last space for " ?[^\s\p{L}\p{N}]+".
		{"qwen newlines", knownRegex[qwen2Pattern], "a \n\n  !", []string{"a", " \n\n", " ", " !"}},
		{"qwen case-insensitive contraction", knownRegex[qwen2Pattern], "IT'S", []string{"IT", "'S"}},
		{"qwen letter after punctuation", knownRegex[qwen2Pattern], "(hello", []string{"(hello"}},
		{"digits individual", digits{true}, "a12b", []string{"a", "1", "2", "b"}},
		{"digits grouped", digits{false}, "a12b3", []string{"a", "12", "b", "3"}},
		{"metaspace split", metaspace{repl: "▁", prependScheme: "always", split_: true}, "Hey  friend",
			[]string{"▁Hey", "▁", "▁friend"}},
		{"metaspace never", metaspace{repl: "▁", prependScheme: "never", split_: false}, "Hey friend",
			[]string{"Hey▁friend"}},
		{"prefix space", prefixSpace{}, "x", []string{" x"}},
	}
	for _, c := range cases {
		got := c.sp.split(nil, c.in, true)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: split(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}
