package runtime

import "math"

// expf returns e^x in float32 (Cephes' expf: range reduction by ln 2 and a
// degree-6 polynomial), within 2 ulp of the exact value; it is several
// times faster than math.Exp in the attention softmax and SiLU.
func expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	if x < -87.33654 {
		return 0
	}
	fn := x*log2e + 0.5
	n := int32(fn)
	if fn < 0 && float32(n) != fn {
		n-- // floor for negatives
	}
	r := x - float32(n)*ln2hi - float32(n)*ln2lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	// y·2^n, stepping through two factors so n = 128 or -127 cannot
	// overflow the exponent field.
	h := n / 2
	return y * math.Float32frombits(uint32(h+127)<<23) * math.Float32frombits(uint32(n-h+127)<<23)
}
