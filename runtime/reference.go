package runtime

import (
	"fmt"
	"math"

	"github.com/nlpodyssey/spago/mat"
)

// referenceForward is the plain reference implementation of the forward
// pass: every weight is upcast to a float32 spago matrix layer by layer and
// each step uses spago's own ops (Mul, MulT, Add, Prod, Sigmoid, Softmax).
// It recomputes the whole sequence without a KV cache and returns the logits
// of every position. It is slow and memory-hungry by design: it exists to
// check the fast path.
func (m *Model) referenceForward(ids []int) ([][]float32, error) {
	c := m.cfg
	n := len(ids)
	H, hd := c.HiddenSize, c.HeadDim
	group := c.NumHeads / c.NumKVHeads
	row := make([]float32, H)
	xs := make([]mat.Matrix, n)
	for t, id := range ids {
		if id < 0 || id >= c.VocabSize {
			return nil, fmt.Errorf("token id %d is outside the vocabulary", id)
		}
		m.embed.Row(row, id)
		xs[t] = vec(row)
	}
	for li := range m.layers {
		l := &m.layers[li]
		wq, wk, wv, wo := l.q.Dense(), l.k.Dense(), l.v.Dense(), l.o.Dense()
		wg, wu, wd := l.gate.Dense(), l.up.Dense(), l.down.Dense()
		qs := make([]mat.Matrix, n)
		ks := make([][]float32, n)
		vs := make([][]float32, n)
		for t := 0; t < n; t++ {
			xn := refRMSNorm(xs[t], l.attnNorm, c.RMSNormEps)
			q, k, v := wq.Mul(xn), wk.Mul(xn), wv.Mul(xn)
			if l.qBias != nil {
				q, k, v = q.Add(vec(l.qBias)), k.Add(vec(l.kBias)), v.Add(vec(l.vBias))
			}
			qd, kd := mat.Data[float32](q), mat.Data[float32](k)
			for h := 0; h < c.NumHeads; h++ {
				refRope(qd[h*hd:(h+1)*hd], t, m.invFreq)
			}
			for h := 0; h < c.NumKVHeads; h++ {
				refRope(kd[h*hd:(h+1)*hd], t, m.invFreq)
			}
			qs[t], ks[t], vs[t] = q, kd, mat.Data[float32](v)
		}
		scale := 1 / math.Sqrt(float64(hd))
		for t := 0; t < n; t++ {
			heads := make([]float32, 0, c.NumHeads*hd)
			qd := mat.Data[float32](qs[t])
			for h := 0; h < c.NumHeads; h++ {
				g := h / group
				K := make([]float32, 0, (t+1)*hd)
				V := make([]float32, 0, (t+1)*hd)
				for j := 0; j <= t; j++ {
					K = append(K, ks[j][g*hd:(g+1)*hd]...)
					V = append(V, vs[j][g*hd:(g+1)*hd]...)
				}
				km := mat.NewDense[float32](mat.WithShape(t+1, hd), mat.WithBacking(K))
				vm := mat.NewDense[float32](mat.WithShape(t+1, hd), mat.WithBacking(V))
				p := km.Mul(vec(qd[h*hd : (h+1)*hd])).ProdScalar(scale).Softmax()
				heads = append(heads, mat.Data[float32](vm.MulT(p))...)
			}
			xs[t] = xs[t].Add(wo.Mul(vec(heads)))
			xn := refRMSNorm(xs[t], l.mlpNorm, c.RMSNormEps)
			g := wg.Mul(xn)
			act := g.Prod(g.Sigmoid()).Prod(wu.Mul(xn))
			xs[t] = xs[t].Add(wd.Mul(act))
		}
	}
	m.refHeadOnce.Do(func() { m.refHead = m.lmHead.Dense() })
	head := m.refHead
	out := make([][]float32, n)
	for t := 0; t < n; t++ {
		out[t] = mat.Data[float32](head.Mul(refRMSNorm(xs[t], m.norm, c.RMSNormEps)))
	}
	return out, nil
}

// vec wraps a copy of v as a spago column vector.
func vec(v []float32) mat.Matrix {
	return mat.NewDense[float32](mat.WithShape(len(v), 1), mat.WithBacking(append([]float32(nil), v...)))
}

func refRMSNorm(x mat.Matrix, w []float32, eps float64) mat.Matrix {
	ms := x.Prod(x).Sum().Item().F64() / float64(x.Size())
	return x.ProdScalar(1 / math.Sqrt(ms+eps)).Prod(vec(w))
}

func refRope(x []float32, pos int, invFreq []float32) {
	half := len(x) / 2
	for i := 0; i < half; i++ {
		a := float64(float32(pos) * invFreq[i])
		cs, sn := float32(math.Cos(a)), float32(math.Sin(a))
		x0, x1 := x[i], x[i+half]
		x[i] = x0*cs - x1*sn
		x[i+half] = x1*cs + x0*sn
	}
}
