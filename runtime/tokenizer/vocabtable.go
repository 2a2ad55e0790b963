package tokenizer

import (
	"hash/maphash"
	"math/bits"
)

// vocabTable maps token strings to ids. It is an open-addressing hash table
// of ids whose keys are the token strings in idToToken, so each entry costs
// 4 bytes instead of a Go map's string header, value and control bytes; it
// is built once at load (150k entries) and then read concurrently.
type vocabTable struct {
	seed   maphash.Seed
	slots  []int32 // id+1; 0 means empty
	tokens *[]string
	n      int
}

func newVocabTable(tokens *[]string, n int) *vocabTable {
	size := 1 << bits.Len(uint(n*2))
	if size < 8 {
		size = 8
	}
	return &vocabTable{seed: maphash.MakeSeed(), slots: make([]int32, size), tokens: tokens}
}

// get returns the id of token s.
func (v *vocabTable) get(s string) (int, bool) {
	mask := uint64(len(v.slots) - 1)
	toks := *v.tokens
	for h := maphash.String(v.seed, s) & mask; ; h = (h + 1) & mask {
		e := v.slots[h]
		if e == 0 {
			return 0, false
		}
		if toks[e-1] == s {
			return int(e - 1), true
		}
	}
}

// getBytes is get for a byte slice, without allocating.
func (v *vocabTable) getBytes(b []byte) (int, bool) {
	mask := uint64(len(v.slots) - 1)
	toks := *v.tokens
	for h := maphash.Bytes(v.seed, b) & mask; ; h = (h + 1) & mask {
		e := v.slots[h]
		if e == 0 {
			return 0, false
		}
		if toks[e-1] == string(b) {
			return int(e - 1), true
		}
	}
}

// put maps (*tokens)[id] to id, replacing the id of an equal token string.
// It reports whether the string was already present.
func (v *vocabTable) put(id int) (replaced bool) {
	if (v.n+1)*2 > len(v.slots) {
		v.grow()
	}
	toks := *v.tokens
	s := toks[id]
	mask := uint64(len(v.slots) - 1)
	for h := maphash.String(v.seed, s) & mask; ; h = (h + 1) & mask {
		e := v.slots[h]
		if e == 0 {
			v.slots[h] = int32(id + 1)
			v.n++
			return false
		}
		if toks[e-1] == s {
			v.slots[h] = int32(id + 1)
			return true
		}
	}
}

func (v *vocabTable) grow() {
	old := v.slots
	bigger := newVocabTable(v.tokens, len(old))
	bigger.seed = v.seed
	mask := uint64(len(bigger.slots) - 1)
	toks := *v.tokens
	for _, e := range old {
		if e == 0 {
			continue
		}
		for h := maphash.String(v.seed, toks[e-1]) & mask; ; h = (h + 1) & mask {
			if bigger.slots[h] == 0 {
				bigger.slots[h] = e
				break
			}
		}
	}
	v.slots = bigger.slots
}
