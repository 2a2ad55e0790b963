package tokenizer

import (
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// FuzzEncode checks that encoding never panics, that decoding the ids gives
// back the NFC form of the (valid UTF-8) input, that streaming decode equals
// Decode, and that every id is in range.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{
		"", "Hello world", "企业内部知识问答机器人", "a<|im_end|>b", "<|im_start", "e\u0301",
		"I'LL'S'd 're", "a \u0085b", "  \r\n\t x", "😀👩‍👩‍👧", "\xff\xfe", "12345", "ſ'ſ",
	} {
		f.Add(s)
	}
	tok := qwen(f)
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("Encode(%q): id %d out of range", s, id)
			}
		}
		// Encode replaces invalid UTF-8 first, so the identity holds for
		// every input, not only valid UTF-8.
		want := norm.NFC.String(strings.ToValidUTF8(s, "\uFFFD"))
		got := tok.Decode(ids)
		if got != want {
			t.Fatalf("Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
		if st := streamAll(tok, ids); st != got {
			t.Fatalf("stream decode %q != Decode %q", st, got)
		}
	})
}

// FuzzLoad checks that malformed tokenizer.json input yields an error, not
// a panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}`), []byte(`{}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a","a"]]},"added_tokens":[{"id":5,"content":"<x>","special":true}]}`), []byte(`{"eos_token":"<x>"}`))
	f.Add([]byte(`{"pre_tokenizer":{"type":"Metaspace"},"normalizer":{"type":"NFC"},"model":{"type":"BPE","byte_fallback":true,"vocab":{"<0x41>":0,"\u2581":1},"merges":[]}}`), []byte(nil))
	f.Fuzz(func(t *testing.T, tj, cj []byte) {
		tok, err := Load(tj, cj)
		if err != nil {
			return
		}
		ids := tok.Encode("Hello, 世界 <x> \xff")
		_ = tok.Decode(ids)
		_ = streamAll(tok, ids)
	})
}
