package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLogitAccuracy checks, for every path, the absolute error of
// lm_head-like products (logits up to ≈ 20 in magnitude) against a float64
// reference: the model's own tests allow 1e-3, so the kernels must stay
// well inside it. It also logs the error of rounding the activations to
// plain bf16 (no low part), which is what the hi/lo split avoids.
func TestLogitAccuracy(t *testing.T) {
	const rows, cols = 2048, 1024
	rng := rand.New(rand.NewPCG(21, 22))
	w := randBF16(rng, rows*cols, 0.05, true)
	x := randF32(rng, cols, 3)
	for i := 0; i < cols; i += 97 {
		x[i] *= 10 // activation outliers, as real hidden states have
	}
	want, _ := refMatMul(w, x, 1, rows, cols)
	var maxLogit float64
	for _, v := range want {
		maxLogit = math.Max(maxLogit, math.Abs(v))
	}

	// Plain bf16 activations, for comparison.
	xb := make([]float32, cols)
	for i, v := range x {
		xb[i] = BF16ToF32(F32ToBF16(v))
	}
	wantBF, _ := refMatMul(w, xb, 1, rows, cols)
	var bfErr float64
	for i := range want {
		bfErr = math.Max(bfErr, math.Abs(wantBF[i]-want[i]))
	}
	t.Logf("max |logit| %.2f; rounding activations to bf16 alone would give max error %.2e", maxLogit, bfErr)

	withISA(t, func(t *testing.T) {
		y := make([]float32, rows)
		MatVecBF16(y, w, x, rows, cols)
		ym := make([]float32, 5*rows)
		x5 := make([]float32, 5*cols)
		for n := 0; n < 5; n++ {
			copy(x5[n*cols:], x)
		}
		MatMulBF16(ym, w, x5, 5, rows, cols)
		var maxErr float64
		for r := range want {
			maxErr = math.Max(maxErr, math.Abs(float64(y[r])-want[r]))
			for n := 0; n < 5; n++ {
				maxErr = math.Max(maxErr, math.Abs(float64(ym[n*rows+r])-want[r]))
			}
		}
		t.Logf("%s: max abs error %.2e", active, maxErr)
		if maxErr > 1e-4 {
			t.Errorf("%s: max abs error %.2e exceeds 1e-4", active, maxErr)
		}
	})
}
