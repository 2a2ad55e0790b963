package kernels

import (
	"fmt"
	"math"
)

// BF16ToF32Slice widens src to float32 into dst; len(dst) ≥ len(src).
func BF16ToF32Slice(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = BF16ToF32(b)
	}
}

// F32ToBF16Slice rounds src to bfloat16 (ties to even) into dst;
// len(dst) ≥ len(src).
func F32ToBF16Slice(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = F32ToBF16(f)
	}
}

// invRMS returns 1/sqrt(mean(x²)+eps), with the sum of squares in float64.
func invRMS(x []float32, eps float32) float32 {
	var s0, s1 float64
	i := 0
	for ; i+2 <= len(x); i += 2 {
		a, b := float64(x[i]), float64(x[i+1])
		s0 += a * a
		s1 += b * b
	}
	if i < len(x) {
		a := float64(x[i])
		s0 += a * a
	}
	mean := (s0 + s1) / float64(len(x))
	return float32(1 / math.Sqrt(mean+float64(eps)))
}

// RMSNorm computes out[i] = x[i] / sqrt(mean(x²) + eps) · weight[i] with
// bfloat16 weights (raw bits), as Qwen2/Llama RMSNorm does in float32.
// out may alias x; len(weight) and len(out) ≥ len(x).
func RMSNorm(out, x []float32, weight []uint16, eps float32) {
	if len(x) == 0 {
		return
	}
	if len(weight) < len(x) || len(out) < len(x) {
		panic(fmt.Sprintf("kernels.RMSNorm: len(x)=%d but len(weight)=%d, len(out)=%d", len(x), len(weight), len(out)))
	}
	inv := invRMS(x, eps)
	out = out[:len(x)]
	weight = weight[:len(x)]
	for i, v := range x {
		out[i] = BF16ToF32(weight[i]) * (v * inv)
	}
}

// RMSNormF32 is RMSNorm with float32 weights.
func RMSNormF32(out, x, weight []float32, eps float32) {
	if len(x) == 0 {
		return
	}
	if len(weight) < len(x) || len(out) < len(x) {
		panic(fmt.Sprintf("kernels.RMSNormF32: len(x)=%d but len(weight)=%d, len(out)=%d", len(x), len(weight), len(out)))
	}
	inv := invRMS(x, eps)
	out = out[:len(x)]
	weight = weight[:len(x)]
	for i, v := range x {
		out[i] = weight[i] * (v * inv)
	}
}

// SiLUMul computes gate[i] = silu(gate[i]) · up[i] in place, where
// silu(g) = g / (1 + e^-g): the SwiGLU activation. len(up) ≥ len(gate).
func SiLUMul(gate, up []float32) {
	if len(gate) == 0 {
		return
	}
	siluMul(gate, up[:len(gate)])
}

func siluMulGeneric(gate, up []float32) {
	up = up[:len(gate)]
	for i, g := range gate {
		gate[i] = g / (1 + exp32(-g)) * up[i]
	}
}

// SoftmaxInPlace replaces x with softmax(x) = e^(x-max) / Σ e^(x-max).
// -Inf entries (masked positions) become 0.
func SoftmaxInPlace(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	expSubF32(x, m)
	var sum float64
	for _, e := range x {
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// Argmax returns the index of the largest element of x, the first one on
// ties, ignoring NaNs; -1 if x is empty or all NaN.
func Argmax(x []float32) int {
	best := -1
	var bv float32
	for i, v := range x {
		if v != v {
			continue
		}
		if best < 0 || v > bv {
			best, bv = i, v
		}
	}
	return best
}

// AddBias computes y[i] += b[i] over len(y); len(b) ≥ len(y).
func AddBias(y, b []float32) {
	b = b[:len(y)]
	for i := range y {
		y[i] += b[i]
	}
}

// AddBiasBF16 computes y[i] += b[i] over len(y) with a bfloat16 bias (raw
// bits); len(b) ≥ len(y).
func AddBiasBF16(y []float32, b []uint16) {
	b = b[:len(y)]
	for i := range y {
		y[i] += BF16ToF32(b[i])
	}
}

// AddBiasRows adds b to each of the n consecutive rows of y, each len(b)
// long: the bias of a batched projection.
func AddBiasRows(y, b []float32, n int) {
	for t := 0; t < n; t++ {
		AddBias(y[t*len(b):(t+1)*len(b)], b)
	}
}

// exp32 returns e^x in float32 with a relative error of a few float32 ulp.
// It reduces x = k·ln2 + r with |r| ≤ ln2/2 and evaluates a degree-7
// polynomial in float64, then scales by 2^k.
func exp32(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72284:
		return float32(math.Inf(1))
	case x < -103.97208:
		return 0
	}
	const ln2Hi, ln2Lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10
	const log2e = 1.44269504088896338700e+00
	xd := float64(x)
	const magic = 0x1.8p52 // adding and subtracting it rounds to an integer
	k := (xd*log2e + magic) - magic
	r := xd - k*ln2Hi - k*ln2Lo
	// e^r on |r| ≤ 0.347 by Taylor series to r⁷ (error < 2e-9 relative).
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	return float32(p * math.Float64frombits(uint64(int64(k)+1023)<<52))
}
