package tokenizer

import (
	"strings"
	"sync"
	"testing"
)

func TestQwenSpecialTokens(t *testing.T) {
	tok := qwen(t)
	for name, want := range map[string]int{"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "Ġworld": 1879} {
		if id, ok := tok.TokenID(name); !ok || id != want {
			t.Errorf("TokenID(%q) = %d, %v; want %d", name, id, ok, want)
		}
	}
	if _, ok := tok.TokenID("<think>"); ok {
		t.Error("TokenID(<think>) found; it is not a token of this vocabulary")
	}
	if s, ok := tok.Token(1879); !ok || s != "Ġworld" {
		t.Errorf("Token(1879) = %q, %v", s, ok)
	}
	if tok.VocabSize() != 151646 {
		t.Errorf("VocabSize = %d, want 151646", tok.VocabSize())
	}
	for _, id := range []int{151643, 151644, 151645} {
		if !tok.IsSpecial(id) {
			t.Errorf("IsSpecial(%d) = false", id)
		}
	}
	if tok.IsSpecial(9707) {
		t.Error("IsSpecial(Hello) = true")
	}
	if id, ok := tok.EOSID(); !ok || id != 151645 {
		t.Errorf("EOSID = %d, %v; want <|im_end|>", id, ok)
	}
	if got := tok.EOSIDs(); !equalIDs(got, []int{151645, 151643}) {
		t.Errorf("EOSIDs = %v, want [151645 151643]", got)
	}
	if !tok.IsEOS(151643) || tok.IsEOS(151644) {
		t.Error("IsEOS wrong")
	}
	if _, ok := tok.BOSID(); ok || tok.AddBOS() {
		t.Error("Qwen has no BOS")
	}
	if id, ok := tok.PadID(); !ok || id != 151643 {
		t.Errorf("PadID = %d, %v", id, ok)
	}
	ids := tok.Encode("<|im_start|>user\nhi<|im_end|>")
	if got := tok.DecodeSkipSpecial(ids); got != "user\nhi" {
		t.Errorf("DecodeSkipSpecial = %q", got)
	}
}

func TestEncodeInvalidUTF8(t *testing.T) {
	tok := qwen(t)
	in := "a\xffb\xe4\xbd"
	want := strings.ToValidUTF8(in, "\uFFFD")
	if got := tok.Decode(tok.Encode(in)); got != want {
		t.Fatalf("round trip of invalid UTF-8 = %q, want %q", got, want)
	}
}

func TestEncodeLongWordsAndText(t *testing.T) {
	tok := qwen(t)
	// Long words exercise the priority-queue merge path and bypass the cache;
	// the small-word path on the same text must agree.
	long := strings.Repeat("企业内部知识问答机器人", 40) + strings.Repeat("abcdefghij", 30)
	for _, s := range []string{long, strings.Repeat("a", 1000), strings.Repeat(" ", 300) + "x"} {
		ids := tok.Encode(s)
		if got := tok.Decode(ids); got != s {
			t.Fatalf("round trip failed for %d-byte input", len(s))
		}
		sc := new(bpeScratch)
		sym := tok.initialSymbols(nil, s[:min(len(s), 300)])
		a := tok.mergeHeap(sc, append([]int32(nil), sym...))
		b := tok.mergeSmall(sc, append([]int32(nil), sym...))
		if len(a) != len(b) {
			t.Fatalf("heap and linear merges disagree: %v vs %v", a, b)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("heap and linear merges disagree at %d", i)
			}
		}
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := qwen(t)
	gs := readGoldens(t)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := range gs {
				g := gs[(i+w*31)%len(gs)]
				if !equalIDs(tok.Encode(g.Text), g.IDs) {
					errs <- g.ID
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for id := range errs {
		t.Errorf("concurrent Encode mismatch on %s", id)
	}
}

func TestWordCacheBounded(t *testing.T) {
	c := newWordCache(8) // two generations of 4
	c.put("keep", []int32{42})
	for i := 0; i < 20; i++ {
		c.put(strings.Repeat("x", i+1), []int32{int32(i)})
		if ids, ok := c.get("keep"); !ok || ids[0] != 42 {
			t.Fatalf("frequently used entry evicted after %d puts", i+1)
		}
	}
	if n := len(c.cur) + len(c.old); n > 8 {
		t.Fatalf("cache holds %d entries, limit 8", n)
	}
	if _, ok := c.get("x"); ok {
		t.Fatal("stale entry still cached")
	}
	if ids, ok := c.get(strings.Repeat("x", 20)); !ok || ids[0] != 19 {
		t.Fatal("latest entry missing")
	}
}
