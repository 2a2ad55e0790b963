package tokenizer

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// lookupMerge returns the rank of the merge of the pair (a, b), or noRank.
func (t *Tokenizer) lookupMerge(a, b int32) uint32 {
	return t.merges.get(pairKey(a, b))
}

// Words longer than this are not cached (they are rare and would evict
// many short, frequent words).
const maxCachedWord = 128

// bpeScratch holds reusable buffers for one BPE call.
type bpeScratch struct {
	ids   []int32
	ranks []uint32
	prev  []int32
	next  []int32
	heap  []mergeCand
}

var scratchPool = sync.Pool{New: func() any { return new(bpeScratch) }}

// bpe appends the ids of one pre-tokenized word.
func (t *Tokenizer) bpe(dst []int, word string) []int {
	if t.byteLevel && len(word) == 1 && t.byteIDs[word[0]] >= 0 {
		return append(dst, int(t.byteIDs[word[0]]))
	}
	if t.ignoreMerges {
		if id, ok := t.vocab.get(word); ok {
			return append(dst, id)
		}
	}
	cacheable := len(word) <= maxCachedWord
	if cacheable {
		if ids, ok := t.cache.get(word); ok {
			for _, id := range ids {
				dst = append(dst, int(id))
			}
			return dst
		}
	}
	sc := scratchPool.Get().(*bpeScratch)
	ids := t.initialSymbols(sc.ids[:0], word)
	if len(ids) > 1 && t.merges != nil && t.merges.len() > 0 {
		if len(ids) <= 48 {
			ids = t.mergeSmall(sc, ids)
		} else {
			ids = t.mergeHeap(sc, ids)
		}
	}
	for _, id := range ids {
		dst = append(dst, int(id))
	}
	if cacheable {
		t.cache.put(word, append([]int32(nil), ids...))
	}
	sc.ids = ids[:0]
	scratchPool.Put(sc)
	return dst
}

// initialSymbols splits a word into the symbols BPE starts from: its bytes
// (byte-level) or its characters, with byte_fallback or unk for characters
// missing from the vocabulary.
func (t *Tokenizer) initialSymbols(ids []int32, word string) []int32 {
	if t.byteLevel {
		for i := 0; i < len(word); i++ {
			if id := t.byteIDs[word[i]]; id >= 0 {
				ids = append(ids, id)
			} else if t.unkID >= 0 {
				ids = t.appendUnk(ids)
			}
		}
		return ids
	}
	for i := 0; i < len(word); {
		_, n := utf8.DecodeRuneInString(word[i:])
		ch := word[i : i+n]
		i += n
		if id, ok := t.vocab.get(ch); ok && !t.special[id] {
			ids = append(ids, int32(id))
			continue
		}
		if t.byteFallback {
			ok := true
			for k := 0; k < len(ch); k++ {
				ok = ok && t.byteIDs[ch[k]] >= 0
			}
			if ok {
				for k := 0; k < len(ch); k++ {
					ids = append(ids, t.byteIDs[ch[k]])
				}
				continue
			}
		}
		if t.unkID >= 0 {
			ids = t.appendUnk(ids)
		}
	}
	return ids
}

func (t *Tokenizer) appendUnk(ids []int32) []int32 {
	if t.fuseUnk && len(ids) > 0 && ids[len(ids)-1] == int32(t.unkID) {
		return ids
	}
	return append(ids, int32(t.unkID))
}

// mergeSmall applies merges lowest rank first (leftmost on ties), keeping
// the rank of each adjacent pair so each merge costs two lookups and a
// linear scan. It is the faster choice for short words.
func (t *Tokenizer) mergeSmall(sc *bpeScratch, ids []int32) []int32 {
	ranks := sc.ranks[:0]
	for k := 0; k+1 < len(ids); k++ {
		ranks = append(ranks, t.lookupMerge(ids[k], ids[k+1]))
	}
	for len(ids) > 1 {
		best, bi := noRank, -1
		for k, r := range ranks {
			if r < best {
				best, bi = r, k
			}
		}
		if bi < 0 {
			break
		}
		ids[bi] = t.merges.result[best]
		copy(ids[bi+1:], ids[bi+2:])
		ids = ids[:len(ids)-1]
		copy(ranks[bi:], ranks[bi+1:])
		ranks = ranks[:len(ranks)-1]
		if bi > 0 {
			ranks[bi-1] = t.lookupMerge(ids[bi-1], ids[bi])
		}
		if bi < len(ranks) {
			ranks[bi] = t.lookupMerge(ids[bi], ids[bi+1])
		}
	}
	sc.ranks = ranks[:0]
	return ids
}

// mergeCand is a candidate merge of the symbol at pos with its successor.
type mergeCand struct {
	rank uint32 // also identifies the pair, to detect stale entries
	pos  int32
}

func (a mergeCand) less(b mergeCand) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// candHeap is a binary min-heap of merge candidates ordered by (rank, pos).
type candHeap []mergeCand

func (h *candHeap) push(c mergeCand) {
	q := append(*h, c)
	k := len(q) - 1
	for k > 0 {
		p := (k - 1) / 2
		if !q[k].less(q[p]) {
			break
		}
		q[k], q[p] = q[p], q[k]
		k = p
	}
	*h = q
}

func (h *candHeap) pop() mergeCand {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	k := 0
	for {
		l := 2*k + 1
		if l >= len(q) {
			break
		}
		m := l
		if r := l + 1; r < len(q) && q[r].less(q[l]) {
			m = r
		}
		if !q[m].less(q[k]) {
			break
		}
		q[k], q[m] = q[m], q[k]
		k = m
	}
	*h = q
	return top
}

// mergeHeap is the O(n log n) merge loop for long words: a priority queue
// of (rank, position) over a linked list of symbols, as in the reference
// implementation.
func (t *Tokenizer) mergeHeap(sc *bpeScratch, ids []int32) []int32 {
	n := len(ids)
	prev, next := sc.prev[:0], sc.next[:0]
	for k := 0; k < n; k++ {
		prev = append(prev, int32(k-1))
		next = append(next, int32(k+1))
	}
	next[n-1] = -1
	h := candHeap(sc.heap[:0])
	for k := 0; k+1 < n; k++ {
		if r := t.lookupMerge(ids[k], ids[k+1]); r != noRank {
			h.push(mergeCand{rank: r, pos: int32(k)})
		}
	}
	const dead = -2
	for len(h) > 0 {
		c := h.pop()
		p := c.pos
		if ids[p] == dead || next[p] < 0 {
			continue
		}
		r := next[p]
		if t.lookupMerge(ids[p], ids[r]) != c.rank {
			continue // stale: a neighbour changed since it was queued
		}
		ids[p] = t.merges.result[c.rank]
		ids[r] = dead
		next[p] = next[r]
		if next[r] >= 0 {
			prev[next[r]] = p
		}
		if q := prev[p]; q >= 0 {
			if rk := t.lookupMerge(ids[q], ids[p]); rk != noRank {
				h.push(mergeCand{rank: rk, pos: q})
			}
		}
		if nx := next[p]; nx >= 0 {
			if rk := t.lookupMerge(ids[p], ids[nx]); rk != noRank {
				h.push(mergeCand{rank: rk, pos: p})
			}
		}
	}
	out := ids[:0]
	for k := 0; k >= 0; k = int(next[k]) {
		out = append(out, ids[k])
	}
	sc.prev, sc.next, sc.heap = prev[:0], next[:0], h[:0]
	return out
}

// defaultCacheEntries bounds the word cache.
const defaultCacheEntries = 1 << 16

// wordCache maps words to their BPE ids. It is safe for concurrent use and
// bounded, with two generations: when the current one is full it becomes
// the old one and the previous old one is dropped; hits in the old
// generation are copied forward. Frequent words thus survive a stream of
// one-off words (long Chinese phrases, for instance) at the cost of at
// most limit entries.
type wordCache struct {
	mu       sync.RWMutex
	cur, old map[string][]int32
	limit    int // per generation
}

func newWordCache(limit int) *wordCache {
	return &wordCache{cur: make(map[string][]int32), limit: limit / 2}
}

func (c *wordCache) get(w string) ([]int32, bool) {
	if c.limit <= 0 {
		return nil, false
	}
	c.mu.RLock()
	ids, ok := c.cur[w]
	inOld := false
	if !ok {
		ids, inOld = c.old[w]
	}
	c.mu.RUnlock()
	if inOld {
		c.put(w, ids)
	}
	return ids, ok || inOld
}

func (c *wordCache) put(w string, ids []int32) {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	if len(c.cur) >= c.limit {
		c.old, c.cur = c.cur, make(map[string][]int32, c.limit)
	}
	c.cur[strings.Clone(w)] = ids // the word may be a slice of a large input
	c.mu.Unlock()
}
