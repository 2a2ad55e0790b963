//go:build !amd64 || purego

package kernels

func detectISA() isa { return isaGeneric }

func supportedISAs() []isa { return []isa{isaGeneric} }

func matVecRows(y []float32, w []uint16, x []float32, _, _ []uint16, r0, r1, cols int, _ isa) {
	matVecRowsGeneric(y, w, x, r0, r1, cols)
}

func matMulRows(y []float32, w []uint16, x []float32, _, _ []uint16, tokens, rows, cols, r0, r1 int, _ isa) {
	for n := 0; n < tokens; n++ {
		matVecRowsGeneric(y[n*rows:(n+1)*rows], w, x[n*cols:(n+1)*cols], r0, r1, cols)
	}
}

func dotF32(a, b []float32) float32 { return dotF32Generic(a, b) }

func axpyF32(y []float32, a float32, x []float32) { axpyF32Generic(y, a, x) }

func sumU64(p []uint64) uint64 { return sumU64Generic(p) }

func splitBF16Fast(hi, lo []uint16, x []float32) { splitBF16(hi, lo, x) }

func dotsF32(out, q, keys []float32, stride int) { dotsF32Generic(out, q, keys, stride) }

func axpysF32(out, p, vals []float32, stride int) { axpysF32Generic(out, p, vals, stride) }

func expSubF32(x []float32, sub float32) {
	for i, v := range x {
		x[i] = exp32(v - sub)
	}
}

func siluMul(gate, up []float32) { siluMulGeneric(gate, up) }

func spinPause() {}
