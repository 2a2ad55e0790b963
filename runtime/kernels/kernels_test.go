package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// withISA runs f once per implementation this CPU supports, with that
// implementation forced.
func withISA(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := active
	defer func() { active = saved }()
	for _, s := range supportedISAs() {
		active = s
		t.Run(s.String(), f)
	}
}

// randBF16 returns n bf16 weights, roughly N(0, scale²), in a slice that
// starts off 16-byte alignment when misalign is set (as tensors inside a
// memory-mapped file do).
func randBF16(rng *rand.Rand, n int, scale float64, misalign bool) []uint16 {
	off := 0
	if misalign {
		off = 1
	}
	buf := make([]uint16, n+off)
	w := buf[off:]
	for i := range w {
		w[i] = F32ToBF16(float32(rng.NormFloat64() * scale))
	}
	return w
}

func randF32(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	return x
}

// refMatMul is the float64 reference: y[n][r] = Σ_c w[r][c]·x[n][c], and
// the matching Σ |w·x| that bounds the float32 rounding error.
func refMatMul(w []uint16, x []float32, tokens, rows, cols int) (y, mag []float64) {
	y = make([]float64, tokens*rows)
	mag = make([]float64, tokens*rows)
	for n := 0; n < tokens; n++ {
		for r := 0; r < rows; r++ {
			var s, m float64
			for c := 0; c < cols; c++ {
				p := float64(BF16ToF32(w[r*cols+c])) * float64(x[n*cols+c])
				s += p
				m += math.Abs(p)
			}
			y[n*rows+r] = s
			mag[n*rows+r] = m
		}
	}
	return y, mag
}

// checkClose fails unless every got[i] is within the float32 error bound
// of want[i]: tol·Σ|terms| with tol a small multiple of float32 epsilon
// (the bf16 hi/lo split of activations adds about 2⁻¹⁷ relative per term).
func checkClose(t *testing.T, what string, got []float32, want, mag []float64, tol float64) {
	t.Helper()
	bad := 0
	for i := range want {
		err := math.Abs(float64(got[i]) - want[i])
		if err > tol*mag[i]+1e-30 || math.IsNaN(float64(got[i])) {
			if bad < 5 {
				t.Errorf("%s: [%d] got %v want %v (err %.3g, bound %.3g)", what, i, got[i], want[i], err, tol*mag[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d outputs out of bound", what, bad, len(want))
	}
}

// errTol is the relative (to Σ|w·x|) error allowed for every path:
// float32 accumulation over a few thousand terms plus the 2⁻¹⁷ split.
const errTol = 1e-5

var matShapes = [][2]int{
	{1, 1}, {1, 7}, {3, 31}, {4, 32}, {5, 33}, {7, 63}, {8, 64}, {9, 100},
	{13, 129}, {16, 1024}, {33, 95}, {64, 257}, {100, 1000}, {130, 2816},
}

func TestMatVecBF16(t *testing.T) {
	withISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, sh := range matShapes {
			rows, cols := sh[0], sh[1]
			for _, mis := range []bool{false, true} {
				w := randBF16(rng, rows*cols, 0.05, mis)
				x := randF32(rng, cols, 1)
				y := make([]float32, rows)
				MatVecBF16(y, w, x, rows, cols)
				want, mag := refMatMul(w, x, 1, rows, cols)
				checkClose(t, fmt.Sprintf("%dx%d misaligned=%v", rows, cols, mis), y, want, mag, errTol)
			}
		}
	})
}

func TestMatMulBF16(t *testing.T) {
	withISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, tokens := range []int{1, 2, 3, 4, 5, 8, 11} {
			for _, sh := range matShapes {
				rows, cols := sh[0], sh[1]
				w := randBF16(rng, rows*cols, 0.05, tokens%2 == 1)
				x := randF32(rng, tokens*cols, 1)
				y := make([]float32, tokens*rows)
				MatMulBF16(y, w, x, tokens, rows, cols)
				want, mag := refMatMul(w, x, tokens, rows, cols)
				checkClose(t, fmt.Sprintf("%d tokens %dx%d", tokens, rows, cols), y, want, mag, errTol)
			}
		}
	})
}

func TestMeasureBandwidth(t *testing.T) {
	withISA(t, func(t *testing.T) {
		gb := MeasureBandwidth(8<<20, 3)
		if !(gb > 0.1 && gb < 10000) {
			t.Fatalf("MeasureBandwidth = %v GB/s, not plausible", gb)
		}
		buf := make([]uint64, 1000)
		var want uint64
		for i := range buf {
			buf[i] = uint64(i) * 0x9e3779b97f4a7c15
			want += buf[i]
		}
		if got := sumU64(buf[:1000]); got != want {
			t.Fatalf("sumU64 = %d want %d", got, want)
		}
	})
}

func TestSplitBF16(t *testing.T) {
	withISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 14))
		for _, n := range []int{1, 15, 16, 17, 100, 1024} {
			x := randF32(rng, n, 10)
			x[0] = math.Float32frombits(0x3f808000) // a tie
			hi, lo := make([]uint16, n), make([]uint16, n)
			splitBF16Fast(hi, lo, x)
			for i, v := range x {
				wantHi := F32ToBF16(v)
				wantLo := F32ToBF16(v - BF16ToF32(wantHi))
				if hi[i] != wantHi || lo[i] != wantLo {
					t.Fatalf("n=%d [%d] %v: got %#x,%#x want %#x,%#x", n, i, v, hi[i], lo[i], wantHi, wantLo)
				}
				sum := float64(BF16ToF32(hi[i])) + float64(BF16ToF32(lo[i]))
				if math.Abs(sum-float64(v)) > math.Abs(float64(v))*(1.0/(1<<16)) {
					t.Fatalf("split of %v loses too much: %v", v, sum)
				}
			}
		}
	})
}

// TestMatMulMatchesMatVec checks that a batched product gives, bit for
// bit, what one matrix-vector product per token gives, so a prompt
// prefilled at once and decoded token by token see the same numbers.
func TestMatMulMatchesMatVec(t *testing.T) {
	withISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(17, 18))
		for _, sh := range [][3]int{{9, 67, 1024}, {5, 33, 100}, {4, 8, 2816}, {7, 12, 40}} {
			tokens, rows, cols := sh[0], sh[1], sh[2]
			w := randBF16(rng, rows*cols, 0.05, true)
			x := randF32(rng, tokens*cols, 1)
			y := make([]float32, tokens*rows)
			MatMulBF16(y, w, x, tokens, rows, cols)
			yv := make([]float32, rows)
			for n := 0; n < tokens; n++ {
				MatVecBF16(yv, w, x[n*cols:(n+1)*cols], rows, cols)
				for r := range yv {
					if yv[r] != y[n*rows+r] {
						t.Fatalf("%v: token %d row %d: MatMul %v, MatVec %v", sh, n, r, y[n*rows+r], yv[r])
					}
				}
			}
		}
	})
}

// TestConcurrentCallers runs matrix products from several goroutines at
// once (as concurrent generations do); each must get its own exact
// result whether it got the worker pool or ran on its own goroutine.
func TestConcurrentCallers(t *testing.T) {
	const rows, cols, tokens = 96, 256, 5
	rng := rand.New(rand.NewPCG(19, 20))
	w := randBF16(rng, rows*cols, 0.05, true)
	xs := make([][]float32, 6)
	wants := make([][]float32, len(xs))
	for i := range xs {
		xs[i] = randF32(rng, tokens*cols, 1)
		wants[i] = make([]float32, tokens*rows)
		MatMulBF16(wants[i], w, xs[i], tokens, rows, cols)
	}
	done := make(chan error, len(xs))
	for i := range xs {
		go func() {
			y := make([]float32, tokens*rows)
			for it := 0; it < 40; it++ {
				if it%2 == 0 {
					MatMulBF16(y, w, xs[i], tokens, rows, cols)
				} else {
					for n := 0; n < tokens; n++ {
						MatVecBF16(y[n*rows:], w, xs[i][n*cols:], rows, cols)
					}
				}
				for k := range y {
					if y[k] != wants[i][k] {
						done <- fmt.Errorf("caller %d iteration %d: y[%d] = %v want %v", i, it, k, y[k], wants[i][k])
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range xs {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestMatVecsBF16 checks the fused products against separate MatVecBF16
// calls, bit for bit, on every path, including more matrices than one
// parallel loop takes and matrices with no rows.
func TestMatVecsBF16(t *testing.T) {
	withISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(21, 22))
		for _, cols := range []int{1, 31, 64, 100, 1024} {
			for _, rowSet := range [][]int{{1}, {5, 3, 130}, {64, 0, 17}, {1024, 256, 256}, {7, 9, 11, 13, 15, 300}} {
				x := randF32(rng, cols, 1)
				var mats []MatVec
				var want [][]float32
				for i, rows := range rowSet {
					w := randBF16(rng, rows*cols, 0.05, i%2 == 1)
					mats = append(mats, MatVec{Y: make([]float32, rows), W: w, Rows: rows})
					y := make([]float32, rows)
					MatVecBF16(y, w, x, rows, cols)
					want = append(want, y)
				}
				MatVecsBF16(mats, x, cols)
				for i, m := range mats {
					for r := range want[i] {
						if m.Y[r] != want[i][r] {
							t.Fatalf("cols %d rows %v: matrix %d row %d: fused %v, separate %v", cols, rowSet, i, r, m.Y[r], want[i][r])
						}
					}
				}
			}
		}
	})
}

// TestMatVecSwiGLUBF16 checks the fused gate/up/activation against
// MatVecBF16 twice and SiLUMul, bit for bit, on every path.
func TestMatVecSwiGLUBF16(t *testing.T) {
	withISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(23, 24))
		for _, sh := range [][2]int{{1, 1}, {7, 33}, {13, 64}, {100, 257}, {2816, 1024}, {2817, 96}} {
			rows, cols := sh[0], sh[1]
			wg := randBF16(rng, rows*cols, 0.1, false)
			wu := randBF16(rng, rows*cols, 0.1, true)
			x := randF32(rng, cols, 1)
			wantG, wantU := make([]float32, rows), make([]float32, rows)
			MatVecBF16(wantG, wg, x, rows, cols)
			MatVecBF16(wantU, wu, x, rows, cols)
			SiLUMul(wantG, wantU)
			g, u := make([]float32, rows), make([]float32, rows)
			MatVecSwiGLUBF16(g, u, wg, wu, x, rows, cols)
			for r := 0; r < rows; r++ {
				if u[r] != wantU[r] {
					t.Fatalf("%dx%d: up[%d] = %v, want %v", rows, cols, r, u[r], wantU[r])
				}
				if g[r] != wantG[r] {
					t.Fatalf("%dx%d: gate[%d] = %v, want %v", rows, cols, r, g[r], wantG[r])
				}
			}
		}
	})
}
