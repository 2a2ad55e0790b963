package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// BenchmarkTileKernel measures the single-core peak of the prefill tile
// kernel on cache-resident data (64 rows × 1024 cols, 64 tokens).
func BenchmarkTileKernel(b *testing.B) {
	const tokens, rows, cols = 64, 64, 1024
	rng := rand.New(rand.NewPCG(1, 1))
	w := randBF16(rng, rows*cols, 0.05, false)
	x := randF32(rng, tokens*cols, 1)
	y := make([]float32, tokens*rows)
	sp := getSplit(x)
	for _, s := range []isa{isaAVX512BF16, isaAVX512, isaAVX2} {
		if !slices.Contains(supportedISAs(), s) {
			continue
		}
		b.Run(s.String(), func(b *testing.B) {
			for b.Loop() {
				matMulRows(y, w, x, sp.hi, sp.lo, tokens, rows, cols, 0, rows, s)
			}
			b.ReportMetric(float64(tokens*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
