package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestExp32(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200000; i++ {
		x := float32(rng.Float64()*200 - 110)
		got := float64(exp32(x))
		want := math.Exp(float64(x))
		if want < math.SmallestNonzeroFloat32*(1<<23) { // subnormal results lose relative precision
			if math.Abs(got-want) > 2*math.SmallestNonzeroFloat32 {
				t.Fatalf("exp32(%v) = %v want %v", x, got, want)
			}
			continue
		}
		if want > math.MaxFloat32 {
			if !math.IsInf(got, 1) {
				t.Fatalf("exp32(%v) = %v want +Inf", x, got)
			}
			continue
		}
		if rel := math.Abs(got-want) / want; rel > 1.2e-7 {
			t.Fatalf("exp32(%v) = %v want %v (rel err %.3g)", x, got, want, rel)
		}
	}
	if v := exp32(float32(math.Inf(-1))); v != 0 {
		t.Fatalf("exp32(-Inf) = %v", v)
	}
	if v := exp32(float32(math.NaN())); v == v {
		t.Fatalf("exp32(NaN) = %v", v)
	}
}

func TestRMSNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 2, 3, 64, 1023, 1024} {
		x := randF32(rng, n, 3)
		wb := randBF16(rng, n, 1, n%2 == 1)
		wf := make([]float32, n)
		BF16ToF32Slice(wf, wb)
		const eps = 1e-6
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/float64(n)+eps)
		got := make([]float32, n)
		got2 := make([]float32, n)
		RMSNorm(got, x, wb, eps)
		RMSNormF32(got2, x, wf, eps)
		for i := range x {
			want := float64(x[i]) * inv * float64(wf[i])
			tol := 4e-7 * math.Abs(want)
			if math.Abs(float64(got[i])-want) > tol || math.Abs(float64(got2[i])-want) > tol {
				t.Fatalf("n=%d [%d]: got %v / %v want %v", n, i, got[i], got2[i], want)
			}
		}
		RMSNorm(x, x, wb, eps) // in place
		for i := range x {
			if x[i] != got[i] {
				t.Fatalf("in-place RMSNorm differs at %d", i)
			}
		}
	}
}

func TestSiLUMulSoftmaxArgmax(t *testing.T) {
	withISA(t, testSiLUMulSoftmaxArgmax)
}

func TestExpSub(t *testing.T) {
	withISA(t, func(t *testing.T) {
		x := make([]float32, 0, 4096)
		for v := -100.0; v < 90; v += 0.0471 {
			x = append(x, float32(v))
		}
		x = append(x, float32(math.Inf(-1)), -87.3, -87.4, 0, 1e-30)
		orig := append([]float32(nil), x...)
		expSubF32(x, 0.5)
		for i, v := range orig {
			want := math.Exp(float64(v - 0.5)) // the subtraction rounds in float32
			got := float64(x[i])
			switch {
			case want < 1e-37: // near or below the fast path's range: 0 or tiny
				if math.Abs(got-want) > 1.5e-38 {
					t.Fatalf("exp(%v-0.5) = %v want %v", v, got, want)
				}
			case want > 2.4e38: // above: clamped near max or Inf
				if got < 2e38 {
					t.Fatalf("exp(%v-0.5) = %v want %v", v, got, want)
				}
			default:
				if rel := math.Abs(got-want) / want; rel > 2.5e-7 {
					t.Fatalf("exp(%v-0.5) = %v want %v (rel %.3g)", v, got, want, rel)
				}
			}
		}
	})
}

func testSiLUMulSoftmaxArgmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	g := randF32(rng, 2817, 4)
	u := randF32(rng, 2817, 1)
	want := make([]float64, len(g))
	for i := range g {
		gv := float64(g[i])
		want[i] = gv / (1 + math.Exp(-gv)) * float64(u[i])
	}
	SiLUMul(g, u)
	for i := range g {
		if math.Abs(float64(g[i])-want[i]) > 6e-7*math.Abs(want[i])+1e-30 {
			t.Fatalf("SiLUMul[%d] = %v want %v", i, g[i], want[i])
		}
	}

	x := randF32(rng, 1001, 5)
	x[17] = float32(math.Inf(-1))
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - m)
	}
	orig := append([]float32(nil), x...)
	SoftmaxInPlace(x)
	var total float64
	for i := range x {
		want := math.Exp(float64(orig[i])-m) / sum
		if math.Abs(float64(x[i])-want) > 1e-6*want+1e-12 {
			t.Fatalf("softmax[%d] = %v want %v", i, x[i], want)
		}
		total += float64(x[i])
	}
	if x[17] != 0 || math.Abs(total-1) > 1e-5 {
		t.Fatalf("softmax: masked %v, total %v", x[17], total)
	}

	if got := Argmax([]float32{1, 3, float32(math.NaN()), 3, -1}); got != 1 {
		t.Fatalf("Argmax = %d want 1", got)
	}
	if got := Argmax([]float32{float32(math.NaN()), -5, -2}); got != 2 {
		t.Fatalf("Argmax = %d want 2", got)
	}
	if got := Argmax(nil); got != -1 {
		t.Fatalf("Argmax(nil) = %d", got)
	}
}

func TestDotAxpyBias(t *testing.T) {
	withISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000} {
			a := randF32(rng, n, 1)
			b := randF32(rng, n+1, 1) // longer than a: only len(a) is used
			var want, mag float64
			for i := range a {
				want += float64(a[i]) * float64(b[i])
				mag += math.Abs(float64(a[i]) * float64(b[i]))
			}
			if got := DotF32(a, b); math.Abs(float64(got)-want) > 1e-6*mag+1e-30 {
				t.Fatalf("DotF32 n=%d: %v want %v", n, got, want)
			}
			y := randF32(rng, n, 1)
			y0 := append([]float32(nil), y...)
			AxpyF32(y, 0.37, b)
			for i := range y {
				w := float64(y0[i]) + 0.37*float64(b[i])
				if math.Abs(float64(y[i])-w) > 2e-7*(math.Abs(float64(y0[i]))+math.Abs(0.37*float64(b[i]))) {
					t.Fatalf("AxpyF32 n=%d [%d]: %v want %v", n, i, y[i], w)
				}
			}
			copy(y, y0)
			AddBias(y, b)
			for i := range y {
				if y[i] != y0[i]+b[i] {
					t.Fatalf("AddBias [%d]", i)
				}
			}
			bb := make([]uint16, n)
			F32ToBF16Slice(bb, b[:n])
			copy(y, y0)
			AddBiasBF16(y, bb)
			for i := range y {
				if y[i] != y0[i]+BF16ToF32(bb[i]) {
					t.Fatalf("AddBiasBF16 [%d]", i)
				}
			}
		}
	})
}

func TestF32ToBF16(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie → even
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie → even (up)
		{math.Float32frombits(0x3f808001), 0x3f81},
		{float32(math.Inf(1)), 0x7f80},
		{math.MaxFloat32, 0x7f80}, // rounds up to +Inf
	}
	for _, c := range cases {
		if got := F32ToBF16(c.in); got != c.want {
			t.Errorf("F32ToBF16(%v) = %#x want %#x", c.in, got, c.want)
		}
	}
	if nan := BF16ToF32(F32ToBF16(float32(math.NaN()))); nan == nan {
		t.Errorf("NaN did not stay NaN")
	}
}

func TestDotsAxpys(t *testing.T) {
	withISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		for _, d := range []int{1, 8, 12, 64, 128, 72} {
			for _, n := range []int{1, 3, 4, 5, 17, 64} {
				stride := 3*d + 5 // heads interleaved, odd stride
				keys := randF32(rng, (n-1)*stride+d, 1)
				q := randF32(rng, d, 1)
				out := make([]float32, n)
				DotsF32(out, q, keys, stride)
				for j := range out {
					var want, mag float64
					for c := 0; c < d; c++ {
						p := float64(q[c]) * float64(keys[j*stride+c])
						want += p
						mag += math.Abs(p)
					}
					if math.Abs(float64(out[j])-want) > 1e-6*mag {
						t.Fatalf("DotsF32 d=%d n=%d [%d]: %v want %v", d, n, j, out[j], want)
					}
				}
				p := randF32(rng, n, 1)
				acc := randF32(rng, d, 1)
				want := make([]float64, d)
				mag := make([]float64, d)
				for c := range want {
					want[c] = float64(acc[c])
					mag[c] = math.Abs(want[c])
					for j := 0; j < n; j++ {
						v := float64(p[j]) * float64(keys[j*stride+c])
						want[c] += v
						mag[c] += math.Abs(v)
					}
				}
				AxpysF32(acc, p, keys, stride)
				for c := range acc {
					if math.Abs(float64(acc[c])-want[c]) > 1e-6*mag[c] {
						t.Fatalf("AxpysF32 d=%d n=%d [%d]: %v want %v", d, n, c, acc[c], want[c])
					}
				}
			}
		}
	})
}

func TestAttendHead(t *testing.T) {
	withISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(23, 24))
		for _, d := range []int{64, 128, 24} {
			for _, n := range []int{1, 2, 7, 130} {
				stride := 2*d + 8
				keys := randF32(rng, (n-1)*stride+d, 1)
				vals := randF32(rng, (n-1)*stride+d, 1)
				q := randF32(rng, d, 2)
				scale := float32(1 / math.Sqrt(float64(d)))
				out := randF32(rng, d, 1) // must be overwritten
				AttendHead(out, q, keys, vals, stride, n, scale, make([]float32, n+3))
				s := make([]float64, n)
				m := math.Inf(-1)
				for j := range s {
					for c := 0; c < d; c++ {
						s[j] += float64(q[c]) * float64(keys[j*stride+c])
					}
					s[j] *= float64(scale)
					m = math.Max(m, s[j])
				}
				var sum float64
				for j := range s {
					s[j] = math.Exp(s[j] - m)
					sum += s[j]
				}
				for c := 0; c < d; c++ {
					var want float64
					for j := range s {
						want += s[j] / sum * float64(vals[j*stride+c])
					}
					if math.Abs(float64(out[c])-want) > 2e-6 {
						t.Fatalf("d=%d n=%d [%d]: %v want %v", d, n, c, out[c], want)
					}
				}
			}
		}
	})
}
