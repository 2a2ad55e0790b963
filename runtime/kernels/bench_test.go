package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Real Qwen1.5-0.5B shapes: q/k/v/o (1024×1024), gate/up (2816×1024),
// down (1024×2816) and the tied lm_head (151936×1024).
var benchShapes = [][2]int{{1024, 1024}, {2816, 1024}, {1024, 2816}, {151936, 1024}}

// BenchmarkMatVecBF16 reports weight GB/s per path and shape, and the
// fraction of MeasureBandwidth (taken at the start of the same run) that
// it reaches. Only the lm_head shape (311 MB) is larger than the caches;
// the others fit in L3 on this machine, so their fraction can exceed 1.
func BenchmarkMatVecBF16(b *testing.B) {
	saved := active
	defer func() { active = saved }()
	bw := MeasureBandwidth(256<<20, 5)
	for _, s := range supportedISAs() {
		active = s
		for _, sh := range benchShapes {
			rows, cols := sh[0], sh[1]
			if s == isaGeneric && rows > 4096 {
				continue
			}
			rng := rand.New(rand.NewPCG(1, 1))
			w := randBF16(rng, rows*cols, 0.05, false)
			x := randF32(rng, cols, 1)
			y := make([]float32, rows)
			b.Run(fmt.Sprintf("%s/%dx%d", s, rows, cols), func(b *testing.B) {
				b.SetBytes(int64(rows * cols * 2))
				for b.Loop() {
					MatVecBF16(y, w, x, rows, cols)
				}
				gbs := float64(rows*cols*2) * float64(b.N) / b.Elapsed().Seconds() / 1e9
				b.ReportMetric(gbs/bw, "frac_of_bw")
			})
		}
	}
}

func BenchmarkMatMulBF16(b *testing.B) {
	saved := active
	defer func() { active = saved }()
	const tokens, rows, cols = 512, 2816, 1024
	rng := rand.New(rand.NewPCG(1, 1))
	w := randBF16(rng, rows*cols, 0.05, false)
	x := randF32(rng, tokens*cols, 1)
	y := make([]float32, tokens*rows)
	for _, s := range supportedISAs() {
		if s == isaGeneric {
			continue
		}
		active = s
		b.Run(fmt.Sprintf("%s/%dx%dx%d", s, tokens, rows, cols), func(b *testing.B) {
			for b.Loop() {
				MatMulBF16(y, w, x, tokens, rows, cols)
			}
			macs := float64(tokens*rows*cols) * float64(b.N)
			b.ReportMetric(macs/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

func BenchmarkBandwidth(b *testing.B) {
	const size = 512 << 20
	b.SetBytes(size)
	var gb float64
	for b.Loop() {
		gb = MeasureBandwidth(size, 5)
	}
	b.ReportMetric(gb, "GB/s")
}

// BenchmarkAttentionHead compares one decode step of one attention head
// over 512 cached positions (head_dim 64): per-position DotF32/AxpyF32
// calls against the batched DotsF32/AxpysF32, for a cache laid out
// position-major (rows of 1024 = 16 heads, 4 KiB apart) and head-major
// (each head's rows contiguous).
func BenchmarkAttentionHead(b *testing.B) {
	const n, d = 512, 64
	for _, stride := range []int{1024, 64} {
		rng := rand.New(rand.NewPCG(1, 1))
		keys := randF32(rng, n*stride, 1)
		vals := randF32(rng, n*stride, 1)
		q := randF32(rng, d, 1)
		sc := make([]float32, n)
		out := make([]float32, d)
		b.Run(fmt.Sprintf("stride%d/per-position", stride), func(b *testing.B) {
			for b.Loop() {
				for j := 0; j < n; j++ {
					sc[j] = DotF32(q, keys[j*stride:j*stride+d])
				}
				SoftmaxInPlace(sc)
				clear(out)
				for j := 0; j < n; j++ {
					AxpyF32(out, sc[j], vals[j*stride:j*stride+d])
				}
			}
		})
		b.Run(fmt.Sprintf("stride%d/batched", stride), func(b *testing.B) {
			for b.Loop() {
				DotsF32(sc, q, keys, stride)
				SoftmaxInPlace(sc)
				clear(out)
				AxpysF32(out, sc, vals, stride)
			}
		})
	}
}

// BenchmarkSiLUMul runs the SwiGLU activation over one token's MLP width
// (2816) on each path.
func BenchmarkSiLUMul(b *testing.B) {
	saved := active
	defer func() { active = saved }()
	rng := rand.New(rand.NewPCG(1, 1))
	g0 := randF32(rng, 2816, 3)
	up := randF32(rng, 2816, 1)
	g := make([]float32, len(g0))
	for _, s := range supportedISAs() {
		active = s
		b.Run(s.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(g)))
			for b.Loop() {
				copy(g, g0)
				SiLUMul(g, up)
			}
		})
	}
}
