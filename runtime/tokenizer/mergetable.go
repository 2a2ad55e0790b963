package tokenizer

import "math/bits"

// mergeTable is an open-addressing hash table from a pair of token ids to
// its merge (rank<<32 | merged id). BPE does a few lookups per input byte,
// so this replaces a Go map: one multiplicative hash, linear probing, and
// key and value side by side so a probe touches one cache line.
type mergeTable struct {
	slots []mergeSlot
	shift uint
	n     int
}

type mergeSlot struct {
	key uint64 // pairKey | occupied; 0 means empty
	val uint64
}

// occupied marks used slots; pair keys use at most 48 bits (ids < 2^24).
const occupied = 1 << 63

func newMergeTable(n int) *mergeTable {
	size := 1 << bits.Len(uint(n*2)) // load factor at most 1/2
	if size < 8 {
		size = 8
	}
	return &mergeTable{
		slots: make([]mergeSlot, size),
		shift: uint(64 - bits.TrailingZeros(uint(size))),
	}
}

func (m *mergeTable) slot(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> m.shift }

// get returns the merge of the pair key k, or noMerge.
func (m *mergeTable) get(k uint64) uint64 {
	k |= occupied
	mask := uint64(len(m.slots) - 1)
	for h := m.slot(k); ; h = (h + 1) & mask {
		s := &m.slots[h]
		if s.key == k {
			return s.val
		}
		if s.key == 0 {
			return noMerge
		}
	}
}

// putIfAbsent stores v for k unless k is present (the first, lowest-rank
// occurrence of a duplicated merge wins). It grows the table as needed.
func (m *mergeTable) putIfAbsent(k, v uint64) {
	if (m.n+1)*2 > len(m.slots) {
		m.grow()
	}
	k |= occupied
	mask := uint64(len(m.slots) - 1)
	for h := m.slot(k); ; h = (h + 1) & mask {
		s := &m.slots[h]
		if s.key == k {
			return
		}
		if s.key == 0 {
			s.key, s.val = k, v
			m.n++
			return
		}
	}
}

func (m *mergeTable) grow() {
	old := m.slots
	bigger := newMergeTable(len(old))
	for _, s := range old {
		if s.key != 0 {
			bigger.putIfAbsent(s.key&^occupied, s.val)
		}
	}
	*m = *bigger
	m.n = bigger.n
}

// len returns the number of merges.
func (m *mergeTable) len() int { return m.n }
