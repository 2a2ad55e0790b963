package kernels

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkPF(b *testing.B) {
	rows, cols := 151936, 1024
	rng := rand.New(rand.NewPCG(1, 1))
	w := randBF16(rng, rows*cols, 0.05, false)
	x := randF32(rng, cols, 1)
	y := make([]float32, rows)
	sp := getSplit(x)
	for _, pf := range []bool{false, true, false, true} {
		b.Run(map[bool]string{false: "plain", true: "pf"}[pf], func(b *testing.B) {
			b.SetBytes(int64(rows * cols * 2))
			for b.Loop() {
				ParallelChunks(rows, 1024, func(r0, r1 int) {
					var out [4]float32
					for r := r0; r < r1; r += 4 {
						if pf {
							dot4BF16DPPF(&w[r*cols], cols*2, &sp.hi[0], &sp.lo[0], cols/32, &out)
						} else {
							dot4BF16DP(&w[r*cols], cols*2, &sp.hi[0], &sp.lo[0], cols/32, &out)
						}
						y[r] = out[0]
					}
				})
			}
		})
	}
}
