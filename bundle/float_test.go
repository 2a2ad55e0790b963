package bundle

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

func float32bits(f float32) uint32 { return math.Float32bits(f) }

// normalTable holds bf16 patterns of N(0, 0.02) samples; weightLike draws
// from it, which is far cheaper than sampling per value under -race.
var normalTable = func() []uint16 {
	r := rand.New(rand.NewPCG(42, 42))
	t := make([]uint16, 1<<16)
	for i := range t {
		t[i] = uint16(float32bits(float32(r.NormFloat64()*0.02)) >> 16)
	}
	return t
}()

// fillRandom fills b with reproducible pseudo-random bytes.
func fillRandom(b []byte, seed1, seed2 uint64) {
	r := rand.New(rand.NewPCG(seed1, seed2))
	var w [8]byte
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
}
