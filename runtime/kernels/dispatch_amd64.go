//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// detectISA picks the best instruction set this CPU and OS support.
func detectISA() isa {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BF16:
		return isaAVX512BF16
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL:
		return isaAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return isaAVX2
	}
	return isaGeneric
}

// supportedISAs lists every implementation this CPU can run, best last.
func supportedISAs() []isa {
	out := []isa{isaGeneric}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		out = append(out, isaAVX2)
	}
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		out = append(out, isaAVX512)
		if cpu.X86.HasAVX512BF16 {
			out = append(out, isaAVX512BF16)
		}
	}
	return out
}

//go:noescape
func dot4BF16DP(w *uint16, stride int, xh, xl *uint16, n32 int, out *[4]float32)

//go:noescape
func dot8BF16DP(w *uint16, stride int, xh, xl *uint16, n32 int, out *[8]float32)

//go:noescape
func dot4x4BF16DP(w *uint16, wstride int, xh, xl *uint16, xstride int, n32 int, out *[16]float32)

//go:noescape
func dot4x2BF16F32x8(w *uint16, wstride int, x *float32, xstride int, n8 int, out *[8]float32)

//go:noescape
func dot4x4BF16F32x16(w *uint16, wstride int, x *float32, xstride int, n16 int, out *[16]float32)

//go:noescape
func dot4BF16F32x16(w *uint16, stride int, x *float32, n16 int, out *[4]float32)

//go:noescape
func dot4BF16F32x8(w *uint16, stride int, x *float32, n8 int, out *[4]float32)

//go:noescape
func dotF32AVX2(a, b *float32, n8 int) float32

//go:noescape
func axpyF32AVX2(y, x *float32, a float32, n8 int)

// matVecRows computes y[r] for r in [r0, r1) with the active instruction
// set. xh/xl are the bf16 split of x (only used by isaAVX512BF16).
func matVecRows(y []float32, w []uint16, x []float32, xh, xl []uint16, r0, r1, cols int, set isa) {
	var out [4]float32
	var blk int
	switch set {
	case isaAVX512BF16:
		blk = 32
	case isaAVX512:
		blk = 16
	case isaAVX2:
		blk = 8
	default:
		matVecRowsGeneric(y, w, x, r0, r1, cols)
		return
	}
	nb := cols / blk
	done := nb * blk
	stride := cols * 2
	r := r0
	if nb > 0 && set == isaAVX512BF16 {
		// Eight rows per call: twice the independent accumulator chains
		// and weight streams of the four-row kernel, which streams faster.
		var out8 [8]float32
		for ; r+8 <= r1; r += 8 {
			dot8BF16DP(&w[r*cols], stride, &xh[0], &xl[0], nb, &out8)
			if done < cols {
				for i := 0; i < 8; i++ {
					out8[i] += dotBF16Generic(w[(r+i)*cols+done:(r+i+1)*cols], x[done:cols])
				}
			}
			copy(y[r:r+8], out8[:])
		}
	}
	if nb > 0 {
		for ; r+4 <= r1; r += 4 {
			wp := &w[r*cols]
			switch set {
			case isaAVX512BF16:
				dot4BF16DP(wp, stride, &xh[0], &xl[0], nb, &out)
			case isaAVX512:
				dot4BF16F32x16(wp, stride, &x[0], nb, &out)
			case isaAVX2:
				dot4BF16F32x8(wp, stride, &x[0], nb, &out)
			}
			if done < cols {
				for i := 0; i < 4; i++ {
					out[i] += dotBF16Generic(w[(r+i)*cols+done:(r+i+1)*cols], x[done:cols])
				}
			}
			y[r], y[r+1], y[r+2], y[r+3] = out[0], out[1], out[2], out[3]
		}
	}
	matVecRowsGeneric(y, w, x, r, r1, cols)
}

// matMulRows computes y[n*rows+r] for every token n and r in [r0, r1).
func matMulRows(y []float32, w []uint16, x []float32, xh, xl []uint16, tokens, rows, cols, r0, r1 int, set isa) {
	if set == isaAVX512 && cols >= 16 {
		matMulRowsF32Tile(y, w, x, tokens, rows, cols, r0, r1)
		return
	}
	if set == isaAVX2 && cols >= 8 {
		matMulRowsAVX2Tile(y, w, x, tokens, rows, cols, r0, r1)
		return
	}
	if set != isaAVX512BF16 || cols < 32 {
		for n := 0; n < tokens; n++ {
			var sh, sl []uint16
			if xh != nil {
				sh, sl = xh[n*cols:(n+1)*cols], xl[n*cols:(n+1)*cols]
			}
			matVecRows(y[n*rows:(n+1)*rows], w, x[n*cols:(n+1)*cols], sh, sl, r0, r1, cols, set)
		}
		return
	}
	var out [16]float32
	nb := cols / 32
	done := nb * 32
	stride := cols * 2
	n := 0
	for ; n+4 <= tokens; n += 4 {
		r := r0
		for ; r+4 <= r1; r += 4 {
			dot4x4BF16DP(&w[r*cols], stride, &xh[n*cols], &xl[n*cols], stride, nb, &out)
			for t := 0; t < 4; t++ {
				yt := y[(n+t)*rows:]
				if done < cols {
					xt := x[(n+t)*cols+done : (n+t+1)*cols]
					for i := 0; i < 4; i++ {
						out[4*t+i] += dotBF16Generic(w[(r+i)*cols+done:(r+i+1)*cols], xt)
					}
				}
				yt[r], yt[r+1], yt[r+2], yt[r+3] = out[4*t], out[4*t+1], out[4*t+2], out[4*t+3]
			}
		}
		for t := 0; t < 4; t++ {
			matVecRowsGeneric(y[(n+t)*rows:(n+t+1)*rows], w, x[(n+t)*cols:(n+t+1)*cols], r, r1, cols)
		}
	}
	for ; n < tokens; n++ {
		matVecRows(y[n*rows:(n+1)*rows], w, x[n*cols:(n+1)*cols], xh[n*cols:(n+1)*cols], xl[n*cols:(n+1)*cols], r0, r1, cols, set)
	}
}

func dotF32(a, b []float32) float32 {
	n := len(a)
	if active < isaAVX2 || n < 8 {
		return dotF32Generic(a, b)
	}
	n8 := n / 8
	s := dotF32AVX2(&a[0], &b[0], n8)
	if n8*8 < n {
		s += dotF32Generic(a[n8*8:], b[n8*8:n])
	}
	return s
}

func axpyF32(y []float32, a float32, x []float32) {
	n := len(y)
	if active < isaAVX2 || n < 8 {
		axpyF32Generic(y, a, x)
		return
	}
	n8 := n / 8
	axpyF32AVX2(&y[0], &x[0], a, n8)
	if n8*8 < n {
		axpyF32Generic(y[n8*8:], a, x[n8*8:n])
	}
}

//go:noescape
func sumU64AVX2(p *uint64, n16 int) uint64

// sumU64 returns the wrapping sum of p.
func sumU64(p []uint64) uint64 {
	if active < isaAVX2 || len(p) < 16 {
		return sumU64Generic(p)
	}
	n16 := len(p) / 16
	return sumU64AVX2(&p[0], n16) + sumU64Generic(p[n16*16:])
}

//go:noescape
func splitBF16AVX512(x *float32, hi, lo *uint16, n16 int)

// splitBF16Fast is splitBF16 with AVX-512 when the active set has it.
// Activations are finite, so the NaN handling of F32ToBF16 is not needed
// in the vector loop.
func splitBF16Fast(hi, lo []uint16, x []float32) {
	if active < isaAVX512 || len(x) < 16 {
		splitBF16(hi, lo, x)
		return
	}
	n16 := len(x) / 16
	hi, lo = hi[:len(x)], lo[:len(x)]
	splitBF16AVX512(&x[0], &hi[0], &lo[0], n16)
	splitBF16(hi[n16*16:], lo[n16*16:], x[n16*16:])
}

//go:noescape
func dot4F32x8(w *float32, stride int, x *float32, n8 int, out *[4]float32)

//go:noescape
func axpys64F32(out *float32, p *float32, v *float32, stride int, n int)

func dotsF32(out, q, keys []float32, stride int) {
	d := len(q)
	if active < isaAVX2 || d < 8 || d%8 != 0 {
		dotsF32Generic(out, q, keys, stride)
		return
	}
	var o [4]float32
	j := 0
	for ; j+4 <= len(out); j += 4 {
		dot4F32x8(&keys[j*stride], stride*4, &q[0], d/8, &o)
		out[j], out[j+1], out[j+2], out[j+3] = o[0], o[1], o[2], o[3]
	}
	if j < len(out) {
		dotsF32Generic(out[j:], q, keys[j*stride:], stride)
	}
}

func axpysF32(out, p, vals []float32, stride int) {
	d := len(out)
	if active < isaAVX2 || d%64 != 0 || len(p) == 0 {
		axpysF32Generic(out, p, vals, stride)
		return
	}
	for c := 0; c < d; c += 64 {
		axpys64F32(&out[c], &p[0], &vals[c], stride*4, len(p))
	}
}

//go:noescape
func expSubF32AVX2(x *float32, n8 int, sub float32)

//go:noescape
func siluMulAVX2(gate, up *float32, n8 int)

// expSubF32 computes x[i] = e^(x[i]-sub).
func expSubF32(x []float32, sub float32) {
	n8 := len(x) / 8
	if active >= isaAVX2 && n8 > 0 {
		expSubF32AVX2(&x[0], n8, sub)
	} else {
		n8 = 0
	}
	for i := n8 * 8; i < len(x); i++ {
		x[i] = exp32(x[i] - sub)
	}
}

// siluMul computes gate[i] = silu(gate[i])·up[i]; len(up) ≥ len(gate).
func siluMul(gate, up []float32) {
	n8 := len(gate) / 8
	if active >= isaAVX2 && n8 > 0 {
		siluMulAVX2(&gate[0], &up[0], n8)
	} else {
		n8 = 0
	}
	siluMulGeneric(gate[n8*8:], up[n8*8:])
}

// matMulRowsF32Tile is matMulRows for AVX-512F: 4 rows × 4 tokens per
// kernel call, weights widened to float32 in registers.
func matMulRowsF32Tile(y []float32, w []uint16, x []float32, tokens, rows, cols, r0, r1 int) {
	var out [16]float32
	nb := cols / 16
	done := nb * 16
	n := 0
	for ; n+4 <= tokens; n += 4 {
		r := r0
		for ; r+4 <= r1; r += 4 {
			dot4x4BF16F32x16(&w[r*cols], cols*2, &x[n*cols], cols*4, nb, &out)
			for t := 0; t < 4; t++ {
				yt := y[(n+t)*rows:]
				if done < cols {
					xt := x[(n+t)*cols+done : (n+t+1)*cols]
					for i := 0; i < 4; i++ {
						out[4*t+i] += dotBF16Generic(w[(r+i)*cols+done:(r+i+1)*cols], xt)
					}
				}
				yt[r], yt[r+1], yt[r+2], yt[r+3] = out[4*t], out[4*t+1], out[4*t+2], out[4*t+3]
			}
		}
		for t := 0; t < 4; t++ {
			matVecRowsGeneric(y[(n+t)*rows:(n+t+1)*rows], w, x[(n+t)*cols:(n+t+1)*cols], r, r1, cols)
		}
	}
	for ; n < tokens; n++ {
		matVecRows(y[n*rows:(n+1)*rows], w, x[n*cols:(n+1)*cols], nil, nil, r0, r1, cols, isaAVX512)
	}
}

func spinPause()

// matMulRowsAVX2Tile is matMulRows for AVX2+FMA: 4 rows × 2 tokens per
// kernel call.
func matMulRowsAVX2Tile(y []float32, w []uint16, x []float32, tokens, rows, cols, r0, r1 int) {
	var out [8]float32
	nb := cols / 8
	done := nb * 8
	n := 0
	for ; n+2 <= tokens; n += 2 {
		r := r0
		for ; r+4 <= r1; r += 4 {
			dot4x2BF16F32x8(&w[r*cols], cols*2, &x[n*cols], cols*4, nb, &out)
			for t := 0; t < 2; t++ {
				yt := y[(n+t)*rows:]
				if done < cols {
					xt := x[(n+t)*cols+done : (n+t+1)*cols]
					for i := 0; i < 4; i++ {
						out[4*t+i] += dotBF16Generic(w[(r+i)*cols+done:(r+i+1)*cols], xt)
					}
				}
				yt[r], yt[r+1], yt[r+2], yt[r+3] = out[4*t], out[4*t+1], out[4*t+2], out[4*t+3]
			}
		}
		for t := 0; t < 2; t++ {
			matVecRowsGeneric(y[(n+t)*rows:(n+t+1)*rows], w, x[(n+t)*cols:(n+t+1)*cols], r, r1, cols)
		}
	}
	for ; n < tokens; n++ {
		matVecRows(y[n*rows:(n+1)*rows], w, x[n*cols:(n+1)*cols], nil, nil, r0, r1, cols, isaAVX2)
	}
}
