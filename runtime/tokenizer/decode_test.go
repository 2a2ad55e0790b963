package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func streamAll(tok *Tokenizer, ids []int) string {
	d := tok.NewStreamDecoder()
	var b strings.Builder
	for _, id := range ids {
		s := d.Push(id)
		if !utf8.ValidString(s) {
			panic("stream decoder emitted invalid UTF-8")
		}
		b.WriteString(s)
	}
	b.WriteString(d.Flush())
	return b.String()
}

func TestStreamDecoderHoldsPartialCharacters(t *testing.T) {
	tok := qwen(t)
	// "😀" (F0 9F 98 80) is split over several byte-level tokens.
	ids := tok.Encode("a😀b你")
	d := tok.NewStreamDecoder()
	var pieces []string
	for _, id := range ids {
		pieces = append(pieces, d.Push(id))
	}
	pieces = append(pieces, d.Flush())
	if got := strings.Join(pieces, ""); got != "a😀b你" {
		t.Fatalf("stream = %q", got)
	}
	held := 0
	for _, p := range pieces {
		if p == "" {
			held++
		}
	}
	if len(ids) < 4 || held == 0 {
		t.Fatalf("ids %v, pieces %q: expected the emoji to span tokens with some pushes held back", ids, pieces)
	}
	// Token by token, the partial emoji must never surface.
	for _, p := range pieces {
		if strings.ContainsRune(p, utf8.RuneError) {
			t.Fatalf("piece %q contains U+FFFD", p)
		}
	}
}

func TestStreamMatchesDecodeOnGoldens(t *testing.T) {
	tok := qwen(t)
	for _, g := range readGoldens(t) {
		if got := streamAll(tok, g.IDs); got != g.Decoded {
			t.Errorf("%s: stream %q, want %q", g.ID, got, g.Decoded)
		}
	}
}

func TestDecodeInvalidBytesIsLossy(t *testing.T) {
	tok := qwen(t)
	byteID := func(b byte) int { return int(tok.byteIDs[b]) }
	cases := []struct {
		bytes []byte
		want  string
	}{
		{[]byte{0xE4, 0xBD}, "\uFFFD"},                   // truncated 3-byte char: one maximal subpart
		{[]byte{0xE4, 0xBD, 'a'}, "\uFFFDa"},             // same, followed by ASCII
		{[]byte{0xFF, 'a'}, "\uFFFDa"},                   // never valid
		{[]byte{0xED, 0xA0, 0x80}, "\uFFFD\uFFFD\uFFFD"}, // surrogate: 3 subparts
		{[]byte{0xF0, 0x9F, 0x98}, "\uFFFD"},
		{[]byte{0xC3, 0xA9}, "é"},
	}
	for _, c := range cases {
		var ids []int
		for _, b := range c.bytes {
			ids = append(ids, byteID(b))
		}
		if got := tok.Decode(ids); got != c.want {
			t.Errorf("Decode(% x) = %q, want %q", c.bytes, got, c.want)
		}
		if got := streamAll(tok, ids); got != c.want {
			t.Errorf("stream(% x) = %q, want %q", c.bytes, got, c.want)
		}
	}
	// Out-of-range ids are skipped.
	if got := tok.Decode([]int{-1, 9707, 1 << 30}); got != "Hello" {
		t.Errorf("Decode with bad ids = %q", got)
	}
}

func TestStreamDecoderFlushResets(t *testing.T) {
	tok := qwen(t)
	d := tok.NewStreamDecoder()
	d.Push(int(tok.byteIDs[0xE4]))
	if got := d.Flush(); got != "\uFFFD" {
		t.Fatalf("Flush of partial char = %q", got)
	}
	if got := d.Push(9707); got != "Hello" {
		t.Fatalf("Push after Flush = %q", got)
	}
}
