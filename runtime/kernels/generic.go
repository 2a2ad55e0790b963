package kernels

// dotBF16Generic returns Σ w[i]·x[i] over len(w) in float32, four
// independent partial sums to shorten the dependency chain.
func dotBF16Generic(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(w); i += 4 {
		s0 += BF16ToF32(w[i]) * x[i]
		s1 += BF16ToF32(w[i+1]) * x[i+1]
		s2 += BF16ToF32(w[i+2]) * x[i+2]
		s3 += BF16ToF32(w[i+3]) * x[i+3]
	}
	for ; i < len(w); i++ {
		s0 += BF16ToF32(w[i]) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// matVecRowsGeneric computes y[r] = Σ_c w[r*cols+c]·x[c] for r in [r0, r1).
func matVecRowsGeneric(y []float32, w []uint16, x []float32, r0, r1, cols int) {
	x = x[:cols]
	for r := r0; r < r1; r++ {
		y[r] = dotBF16Generic(w[r*cols:(r+1)*cols], x)
	}
}

func dotF32Generic(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpyF32Generic(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}

func dotsF32Generic(out, q, keys []float32, stride int) {
	for j := range out {
		out[j] = dotF32(q, keys[j*stride:j*stride+len(q)])
	}
}

func axpysF32Generic(out, p, vals []float32, stride int) {
	for j, a := range p {
		axpyF32(out, a, vals[j*stride:j*stride+len(out)])
	}
}
