package tokenizer

import "math/bits"

// mergeTable is an open-addressing hash table from a pair of token ids to
// the rank of its merge; the merged token of rank r is result[r]. BPE does a
// few lookups per input byte, so this replaces a Go map: one multiplicative
// hash, linear probing, and 8-byte slots holding key and rank together, so
// the Qwen table (150k merges) is 4 MB and a probe touches one cache line.
type mergeTable struct {
	slots  []uint64 // occupied | left<<40 | right<<20 | rank; 0 means empty
	result []int32  // rank → merged token id
	shift  uint
}

const (
	idBits   = 20 // token ids and ranks must be below 1<<idBits
	maxIDs   = 1 << idBits
	occupied = 1 << 63
	rankMask = maxIDs - 1
	keyMask  = occupied | (1<<(2*idBits)-1)<<idBits
	noRank   = ^uint32(0)
)

func newMergeTable(n int) *mergeTable {
	size := 1 << bits.Len(uint(n*2)) // load factor at most 1/2
	if size < 8 {
		size = 8
	}
	return &mergeTable{
		slots:  make([]uint64, size),
		result: make([]int32, 0, n),
		shift:  uint(64 - bits.TrailingZeros(uint(size))),
	}
}

// key returns the slot bits of a pair, without the rank.
func pairKey(a, b int32) uint64 {
	return occupied | uint64(uint32(a))<<(2*idBits) | uint64(uint32(b))<<idBits
}

func (m *mergeTable) home(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> m.shift }

// get returns the rank of the merge of the pair key k, or noRank.
func (m *mergeTable) get(k uint64) uint32 {
	mask := uint64(len(m.slots) - 1)
	for h := m.home(k); ; h = (h + 1) & mask {
		s := m.slots[h]
		if s&keyMask == k {
			return uint32(s & rankMask)
		}
		if s == 0 {
			return noRank
		}
	}
}

// add appends the merge of pair k into id as the next rank, unless the pair
// already has a merge (the first, lowest-rank occurrence wins). The caller
// guarantees ids below maxIDs.
func (m *mergeTable) add(k uint64, id int32) {
	if (len(m.result)+1)*2 > len(m.slots) {
		m.grow()
	}
	mask := uint64(len(m.slots) - 1)
	for h := m.home(k); ; h = (h + 1) & mask {
		s := m.slots[h]
		if s&keyMask == k {
			m.result = append(m.result, -1) // keep ranks aligned with the list
			return
		}
		if s == 0 {
			m.slots[h] = k | uint64(len(m.result))
			m.result = append(m.result, id)
			return
		}
	}
}

func (m *mergeTable) grow() {
	bigger := newMergeTable(len(m.slots))
	mask := uint64(len(bigger.slots) - 1)
	for _, s := range m.slots {
		if s == 0 {
			continue
		}
		for h := bigger.home(s & keyMask); ; h = (h + 1) & mask {
			if bigger.slots[h] == 0 {
				bigger.slots[h] = s
				break
			}
		}
	}
	m.slots, m.shift = bigger.slots, bigger.shift
}

// len returns the number of merges in the list (including duplicates).
func (m *mergeTable) len() int { return len(m.result) }
