package runtime

import (
	"fmt"
	"math"

	"github.com/airlock-dev/airlock/runtime/kernels"
)

// logitsMode says which positions of a forward pass need logits.
type logitsMode int

const (
	logitsNone logitsMode = iota // fill the KV cache only
	logitsLast                   // the last position only
	logitsAll                    // every position
)

// workspace holds the activations of a forward pass over up to cap tokens,
// so decoding allocates nothing per token. It belongs to one sequence.
type workspace struct {
	cap      int
	x, xn    []float32 // [cap, hidden]
	q, att   []float32 // [cap, heads*headDim]
	k, v     []float32 // [cap, kvHeads*headDim]
	gate, up []float32 // [cap, intermediate]
	proj     []float32 // [cap, hidden]
	cos, sin []float32 // [cap, headDim/2]
	scores   []float32 // [heads, scoreCap]
	kt, vt   []float32 // [kvHeads, headDim, scoreCap]: transposed cache for prompt chunks
	scoreCap int
	logits   []float32 // [vocab] or [cap, vocab] for logitsAll
	attn     attnJob
	qkv      [3]kernels.MatVec // the fused q/k/v products of one token
}

func (m *Model) newWorkspace(tokens int) *workspace {
	ws := &workspace{}
	ws.ensure(m, tokens, 0, logitsLast)
	return ws
}

// ensure sizes the workspace for a pass of tokens positions ending at
// position ctx (exclusive).
func (ws *workspace) ensure(m *Model, tokens, ctx int, mode logitsMode) {
	c := m.cfg
	if tokens > ws.cap {
		ws.cap = tokens
		qd, kvd := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
		ws.x = make([]float32, tokens*c.HiddenSize)
		ws.xn = make([]float32, tokens*c.HiddenSize)
		ws.proj = make([]float32, tokens*c.HiddenSize)
		ws.q = make([]float32, tokens*qd)
		ws.att = make([]float32, tokens*qd)
		ws.k = make([]float32, tokens*kvd)
		ws.v = make([]float32, tokens*kvd)
		ws.gate = make([]float32, tokens*c.IntermediateSize)
		ws.up = make([]float32, tokens*c.IntermediateSize)
		ws.cos = make([]float32, tokens*c.HeadDim/2)
		ws.sin = make([]float32, tokens*c.HeadDim/2)
	}
	if ctx > ws.scoreCap || (tokens >= transposeMin && len(ws.kt) < c.NumKVHeads*c.HeadDim*ws.scoreCap) {
		ws.scoreCap = max(ws.scoreCap, (ctx+kvChunk-1)/kvChunk*kvChunk)
		ws.scores = make([]float32, c.NumHeads*ws.scoreCap)
		ws.kt, ws.vt = nil, nil
		if tokens >= transposeMin {
			ws.kt = make([]float32, c.NumKVHeads*c.HeadDim*ws.scoreCap)
			ws.vt = make([]float32, c.NumKVHeads*c.HeadDim*ws.scoreCap)
		}
	}
	need := c.VocabSize
	if mode == logitsAll {
		need = tokens * c.VocabSize
	}
	if mode != logitsNone && len(ws.logits) < need {
		ws.logits = make([]float32, need)
	}
}

// forward runs ids through the model at positions cache.Len() onward,
// appending their keys and values to cache. With logitsLast the logits of
// the last position are in ws.logits[:vocab]; with logitsAll position i's are
// at ws.logits[i*vocab:].
func (m *Model) forward(ids []int, cache *KVCache, ws *workspace, mode logitsMode) error {
	c := m.cfg
	n := len(ids)
	if n == 0 {
		return nil
	}
	start := cache.n
	if start+n > m.maxCtx {
		return fmt.Errorf("context of %d tokens exceeds the limit of %d", start+n, m.maxCtx)
	}
	for _, id := range ids {
		if id < 0 || id >= c.VocabSize {
			return fmt.Errorf("token id %d is outside the vocabulary [0, %d)", id, c.VocabSize)
		}
	}
	cache.reserve(start + n)
	ws.ensure(m, n, start+n, mode)
	H, hd, half := c.HiddenSize, c.HeadDim, c.HeadDim/2
	qd, kvd := c.NumHeads*hd, c.NumKVHeads*hd
	I := c.IntermediateSize

	x := ws.x[:n*H]
	for t, id := range ids {
		m.embed.Row(x[t*H:(t+1)*H], id)
	}
	for t := 0; t < n; t++ {
		p := float32(start + t)
		for i := 0; i < half; i++ {
			a := float64(p * m.invFreq[i])
			ws.cos[t*half+i] = float32(math.Cos(a))
			ws.sin[t*half+i] = float32(math.Sin(a))
		}
	}
	xn, q, k, v := ws.xn[:n*H], ws.q[:n*qd], ws.k[:n*kvd], ws.v[:n*kvd]
	eps := float32(c.RMSNormEps)
	for li := range m.layers {
		l := &m.layers[li]
		for t := 0; t < n; t++ {
			rmsNorm(xn[t*H:(t+1)*H], x[t*H:(t+1)*H], l.attnNorm, eps)
		}
		if n == 1 && l.q.BF16 != nil && l.k.BF16 != nil && l.v.BF16 != nil {
			// One token: the three projections in one parallel loop.
			ws.qkv[0] = kernels.MatVec{Y: q, W: l.q.BF16, Rows: qd}
			ws.qkv[1] = kernels.MatVec{Y: k, W: l.k.BF16, Rows: kvd}
			ws.qkv[2] = kernels.MatVec{Y: v, W: l.v.BF16, Rows: kvd}
			kernels.MatVecsBF16(ws.qkv[:], xn, H)
			ws.qkv = [3]kernels.MatVec{}
		} else {
			l.q.MatMul(q, xn, n)
			l.k.MatMul(k, xn, n)
			l.v.MatMul(v, xn, n)
		}
		for t := 0; t < n; t++ {
			if l.qBias != nil {
				addTo(q[t*qd:(t+1)*qd], l.qBias)
				addTo(k[t*kvd:(t+1)*kvd], l.kBias)
				addTo(v[t*kvd:(t+1)*kvd], l.vBias)
			}
			cs, sn := ws.cos[t*half:(t+1)*half], ws.sin[t*half:(t+1)*half]
			for h := 0; h < c.NumHeads; h++ {
				rope(q[t*qd+h*hd:t*qd+(h+1)*hd], cs, sn)
			}
			for h := 0; h < c.NumKVHeads; h++ {
				rope(k[t*kvd+h*hd:t*kvd+(h+1)*hd], cs, sn)
			}
		}
		copy(cache.k[li][start*kvd:(start+n)*kvd], k)
		copy(cache.v[li][start*kvd:(start+n)*kvd], v)
		m.attention(ws, cache, li, start, n)
		l.o.MatMul(ws.proj[:n*H], ws.att[:n*qd], n)
		addTo(x, ws.proj[:n*H])

		for t := 0; t < n; t++ {
			rmsNorm(xn[t*H:(t+1)*H], x[t*H:(t+1)*H], l.mlpNorm, eps)
		}
		gate, up := ws.gate[:n*I], ws.up[:n*I]
		if n == 1 && l.gate.BF16 != nil && l.up.BF16 != nil {
			// One token: gate, up and the activation in one parallel loop.
			kernels.MatVecSwiGLUBF16(gate, up, l.gate.BF16, l.up.BF16, xn, I, H)
		} else {
			l.gate.MatMul(gate, xn, n)
			l.up.MatMul(up, xn, n)
			kernels.SiLUMul(gate, up)
		}
		l.down.MatMul(ws.proj[:n*H], gate, n)
		addTo(x, ws.proj[:n*H])
	}
	cache.n = start + n

	switch mode {
	case logitsLast:
		last := x[(n-1)*H : n*H]
		rmsNorm(xn[:H], last, m.norm, eps)
		m.lmHead.MatVec(ws.logits[:c.VocabSize], xn[:H])
	case logitsAll:
		for t := 0; t < n; t++ {
			rmsNorm(xn[t*H:(t+1)*H], x[t*H:(t+1)*H], m.norm, eps)
		}
		m.lmHead.MatMul(ws.logits[:n*c.VocabSize], xn, n)
	}
	return nil
}

// attnJob holds the arguments of one attention call, so the function
// handed to the kernels' worker pool is built once per workspace and a
// decode step allocates nothing.
type attnJob struct {
	m         *Model
	ws        *workspace
	cache     *KVCache
	li, n     int
	start     int
	run       func(h0, h1 int) // heads, reading the cache in place
	runT      func(h0, h1 int) // headsTransposed
	transpose func(g0, g1 int)
	prepared  bool
}

// attention computes causal scaled-dot-product attention for the n new
// positions (start..start+n-1) against every cached position, writing the
// concatenated head outputs to ws.att. Heads run in parallel.
func (m *Model) attention(ws *workspace, cache *KVCache, li, start, n int) {
	j := &ws.attn
	if !j.prepared {
		j.m, j.ws, j.prepared = m, ws, true
		j.run = j.heads
	}
	j.cache, j.li, j.start, j.n = cache, li, start, n
	run := j.run
	if n >= transposeMin {
		if j.transpose == nil {
			j.transpose, j.runT = j.transposeKV, j.headsTransposed
		}
		kernels.ParallelChunks(m.cfg.NumKVHeads, 1, j.transpose)
		run = j.runT
	}
	kernels.ParallelChunks(m.cfg.NumHeads, 1, run)
	j.cache = nil
}

// transposeMin is the prompt chunk length from which attention first
// copies the cached keys and values of each KV head into [headDim, ctx]
// order: then each query's scores and output become headDim long-vector
// operations instead of ctx short dot products. Decoding (n = 1) reads the
// cache in place.
const transposeMin = 8

// transposeKV fills ws.kt/ws.vt for KV heads [g0, g1).
func (j *attnJob) transposeKV(g0, g1 int) {
	c := j.m.cfg
	ws := j.ws
	hd, kvd := c.HeadDim, c.NumKVHeads*c.HeadDim
	ctx, stride := j.start+j.n, ws.scoreCap
	keys, vals := j.cache.k[j.li], j.cache.v[j.li]
	for g := g0; g < g1; g++ {
		for p := 0; p < ctx; p++ {
			kr := keys[p*kvd+g*hd : p*kvd+(g+1)*hd]
			vr := vals[p*kvd+g*hd : p*kvd+(g+1)*hd]
			for d := range kr {
				ws.kt[(g*hd+d)*stride+p] = kr[d]
				ws.vt[(g*hd+d)*stride+p] = vr[d]
			}
		}
	}
}

// headsTransposed is heads for a prompt chunk, on ws.kt/ws.vt.
func (j *attnJob) headsTransposed(h0, h1 int) {
	c := j.m.cfg
	ws := j.ws
	hd, qd := c.HeadDim, c.NumHeads*c.HeadDim
	group := c.NumHeads / c.NumKVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	stride := ws.scoreCap
	for h := h0; h < h1; h++ {
		g := h / group
		kt := ws.kt[g*hd*stride : (g+1)*hd*stride]
		vt := ws.vt[g*hd*stride : (g+1)*hd*stride]
		for t := 0; t < j.n; t++ {
			ctx := j.start + t + 1
			sc := ws.scores[h*stride : h*stride+ctx]
			clear(sc)
			q := ws.q[t*qd+h*hd : t*qd+(h+1)*hd]
			for d, qv := range q {
				kernels.AxpyF32(sc, qv*scale, kt[d*stride:d*stride+ctx])
			}
			maxS := float32(math.Inf(-1))
			for _, v := range sc {
				maxS = max(maxS, v)
			}
			var sum float32
			for p, v := range sc {
				e := expf(v - maxS)
				sc[p] = e
				sum += e
			}
			inv := 1 / sum
			out := ws.att[t*qd+h*hd : t*qd+(h+1)*hd]
			for d := range out {
				out[d] = kernels.DotF32(sc, vt[d*stride:d*stride+ctx]) * inv
			}
		}
	}
}

func (j *attnJob) heads(h0, h1 int) {
	c := j.m.cfg
	ws := j.ws
	hd := c.HeadDim
	qd, kvd := c.NumHeads*hd, c.NumKVHeads*hd
	group := c.NumHeads / c.NumKVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	keys, vals := j.cache.k[j.li], j.cache.v[j.li]
	for h := h0; h < h1; h++ {
		g := h / group
		sc := ws.scores[h*ws.scoreCap : (h+1)*ws.scoreCap]
		for t := 0; t < j.n; t++ {
			kernels.AttendHead(ws.att[t*qd+h*hd:t*qd+(h+1)*hd], ws.q[t*qd+h*hd:t*qd+(h+1)*hd],
				keys[g*hd:], vals[g*hd:], kvd, j.start+t+1, scale, sc)
		}
	}
}

// rmsNorm writes w ⊙ x / sqrt(mean(x²) + eps) to dst.
func rmsNorm(dst, x, w []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	r := float32(1 / math.Sqrt(float64(ss/float32(len(x))+eps)))
	for i, v := range x {
		dst[i] = w[i] * (v * r)
	}
}

// rope rotates one head vector in place (rotate-half convention): the first
// half pairs with the second.
func rope(x, cos, sin []float32) {
	half := len(x) / 2
	for i := 0; i < half; i++ {
		a, b := x[i], x[i+half]
		x[i] = a*cos[i] - b*sin[i]
		x[i+half] = b*cos[i] + a*sin[i]
	}
}

// addTo computes dst += src.
func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}
