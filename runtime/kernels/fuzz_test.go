package kernels

import (
	"encoding/binary"
	"math"
	"testing"
)

// FuzzMatMulBF16 feeds arbitrary shapes, weights and activations to every
// implementation and compares each with the float64 reference. Weights
// and activations are kept finite and normal (exponent clamped) so the
// error bound applies; denormals are flushed by VDPBF16PS by design.
func FuzzMatMulBF16(f *testing.F) {
	f.Add(uint8(3), uint8(5), uint8(33), []byte("seed corpus: any bytes make weights"))
	f.Add(uint8(4), uint8(4), uint8(64), make([]byte, 300))
	f.Add(uint8(1), uint8(1), uint8(1), []byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, tokens, rows, cols uint8, data []byte) {
		nt, nr, nc := int(tokens%9), int(rows%37), int(cols)
		if len(data) == 0 {
			data = []byte{0}
		}
		// Expand data cyclically into 16-bit words.
		word := func(i int) uint16 {
			j := (2 * i) % len(data)
			return binary.LittleEndian.Uint16([]byte{data[j], data[(j+1)%len(data)]})
		}
		// Exponent in [-16, 15]: finite, normal, product sums stay tame.
		clamp := func(b uint16) uint16 {
			sign := b & 0x8000
			mant := b & 0x7f
			exp := 111 + (b>>7)&31
			return sign | exp<<7 | mant
		}
		w := make([]uint16, nr*nc+1)[1:] // misaligned start
		for i := range w {
			w[i] = clamp(word(i))
		}
		x := make([]float32, nt*nc)
		for i := range x {
			x[i] = BF16ToF32(clamp(word(i+7))) * (1 + float32(word(i+3)&0xff)/256)
		}
		want, mag := refMatMul(w, x, nt, nr, nc)
		saved := active
		defer func() { active = saved }()
		for _, s := range supportedISAs() {
			active = s
			y := make([]float32, nt*nr)
			MatMulBF16(y, w, x, nt, nr, nc)
			for i := range want {
				if err := math.Abs(float64(y[i]) - want[i]); err > errTol*mag[i]+1e-30 {
					t.Fatalf("%s MatMulBF16 %d×%d×%d [%d]: %v want %v", s, nt, nr, nc, i, y[i], want[i])
				}
			}
			if nt > 0 {
				MatVecBF16(y, w, x, nr, nc)
				for i := 0; i < nr; i++ {
					if err := math.Abs(float64(y[i]) - want[i]); err > errTol*mag[i]+1e-30 {
						t.Fatalf("%s MatVecBF16 %d×%d [%d]: %v want %v", s, nr, nc, i, y[i], want[i])
					}
				}
			}
		}
	})
}
