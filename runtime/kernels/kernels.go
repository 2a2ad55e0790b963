// Package kernels holds the compute kernels of the runtime's hot paths:
// BF16-weight matrix × float32 activations for decode (one token) and prefill
// (many tokens), spread over every core, with SIMD implementations where the
// CPU has them and portable Go elsewhere.
//
// On amd64 the best of AVX-512 BF16 (VDPBF16PS), AVX-512F, AVX2+FMA and
// portable Go is chosen at start-up; the build tag purego and every other
// architecture use portable Go. Weight slices may start at any 2-byte
// aligned address (memory-mapped safetensors), and every kernel accumulates
// in float32.
package kernels

import (
	"fmt"
	"sync"
)

// isa names one implementation of the kernels.
type isa int

const (
	isaGeneric    isa = iota // portable Go
	isaAVX2                  // AVX2 + FMA, weights widened to float32
	isaAVX512                // AVX-512F/BW/VL, weights widened to float32
	isaAVX512BF16            // AVX-512 BF16 dot products (VDPBF16PS)
)

func (s isa) String() string {
	switch s {
	case isaAVX2:
		return "avx2"
	case isaAVX512:
		return "avx512"
	case isaAVX512BF16:
		return "avx512bf16"
	}
	return "generic"
}

// active is the implementation in use; tests switch it to check each path.
var active = detectISA()

// ISA names the instruction set the kernels use on this machine:
// "avx512bf16", "avx512", "avx2" or "generic".
func ISA() string { return active.String() }

// BF16ToF32 converts a bfloat16 bit pattern to float32 exactly.
func BF16ToF32(b uint16) float32 { return f32frombits(uint32(b) << 16) }

// F32ToBF16 rounds a float32 to the nearest bfloat16 (ties to even) and
// returns its bit pattern. NaNs stay NaNs.
func F32ToBF16(f float32) uint16 {
	b := f32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and a NaN
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// splitBF16 writes x ≈ hi + lo with hi = bf16(x) and lo = bf16(x - hi),
// which keeps about 16 bits of x's mantissa for VDPBF16PS.
func splitBF16(hi, lo []uint16, x []float32) {
	hi = hi[:len(x)]
	lo = lo[:len(x)]
	for i, v := range x {
		h := F32ToBF16(v)
		hi[i] = h
		lo[i] = F32ToBF16(v - BF16ToF32(h))
	}
}

// splitBuf is scratch space for the bf16 split of the activations.
type splitBuf struct{ hi, lo []uint16 }

var splitPool = sync.Pool{New: func() any { return new(splitBuf) }}

func getSplit(x []float32) *splitBuf {
	b := splitPool.Get().(*splitBuf)
	if cap(b.hi) < len(x) {
		b.hi = make([]uint16, len(x))
		b.lo = make([]uint16, len(x))
	}
	b.hi, b.lo = b.hi[:len(x)], b.lo[:len(x)]
	splitBF16Fast(b.hi, b.lo, x)
	return b
}

func checkMat(op string, ylen, wlen, xlen, tokens, rows, cols int) {
	if rows < 0 || cols < 0 || tokens < 0 {
		panic(fmt.Sprintf("kernels.%s: negative shape tokens=%d rows=%d cols=%d", op, tokens, rows, cols))
	}
	if ylen < tokens*rows || wlen < rows*cols || xlen < tokens*cols {
		panic(fmt.Sprintf("kernels.%s: short slice: len(y)=%d want %d, len(w)=%d want %d, len(x)=%d want %d",
			op, ylen, tokens*rows, wlen, rows*cols, xlen, tokens*cols))
	}
}

// matVecChunk picks the rows per parallel chunk of a matrix-vector
// product: a multiple of 8 (the widest decode kernel), several chunks per
// thread so a descheduled thread does not hold up the rest, and not so
// small that dispatch costs show.
func matVecChunk(rows, cols, threads int) int {
	c := rows / (threads * 8)
	if minRows := 16384 / max(cols, 1); c < minRows { // ≥ 32 KiB of weights
		c = minRows
	}
	return max(8, (c+7)&^7)
}

// MatVecBF16 computes y[r] = Σ_c w[r*cols+c] · x[c] for r in [0, rows):
// a row-major [rows, cols] BF16 weight matrix (raw bits) times a float32
// vector. len(y) ≥ rows, len(x) ≥ cols, len(w) ≥ rows*cols. Work is
// spread over Threads() goroutines.
func MatVecBF16(y []float32, w []uint16, x []float32, rows, cols int) {
	checkMat("MatVecBF16", len(y), len(w), len(x), 1, rows, cols)
	if rows == 0 {
		return
	}
	t := getMatVecTask(x, cols)
	t.mats[0] = MatVec{Y: y, W: w, Rows: rows}
	t.nm = 1
	t.dispatch(rows)
	putMatVecTask(t)
}

// MatVec is one product of a fused matrix-vector call (MatVecsBF16):
// Y[r] = Σ_c W[r*cols+c] · x[c] for r in [0, Rows), W a row-major BF16
// matrix (raw bits).
type MatVec struct {
	Y    []float32
	W    []uint16
	Rows int
}

// maxFused is the number of matrices one parallel loop of MatVecsBF16
// takes; longer lists are done in groups.
const maxFused = 4

// MatVecsBF16 computes every product of mats against the same vector x of
// cols floats, in one parallel loop (one dispatch and one barrier rather
// than one per matrix): for example the q, k and v projections of one
// token. Results are identical to separate MatVecBF16 calls.
func MatVecsBF16(mats []MatVec, x []float32, cols int) {
	for len(mats) > 0 {
		group := mats[:min(len(mats), maxFused)]
		mats = mats[len(group):]
		total := 0
		for _, m := range group {
			checkMat("MatVecsBF16", len(m.Y), len(m.W), len(x), 1, m.Rows, cols)
			total += m.Rows
		}
		if total == 0 {
			continue
		}
		t := getMatVecTask(x, cols)
		t.nm = copy(t.mats[:], group)
		t.dispatch(total)
		putMatVecTask(t)
	}
}

// MatVecSwiGLUBF16 computes the gated MLP activation of one token in a
// single parallel loop: up = Wup x, then gate = silu(Wgate x) ⊙ up, each
// chunk of rows doing both products and the activation while its outputs
// are in cache. Both matrices are [rows, cols]; the results equal
// MatVecBF16 twice followed by SiLUMul.
func MatVecSwiGLUBF16(gate, up []float32, wGate, wUp []uint16, x []float32, rows, cols int) {
	checkMat("MatVecSwiGLUBF16", len(gate), len(wGate), len(x), 1, rows, cols)
	checkMat("MatVecSwiGLUBF16", len(up), len(wUp), len(x), 1, rows, cols)
	if rows == 0 {
		return
	}
	t := getMatVecTask(x, cols)
	t.mats[0] = MatVec{Y: gate, W: wGate, Rows: rows}
	t.mats[1] = MatVec{Y: up, W: wUp, Rows: rows}
	t.nm, t.swiglu = 2, true
	t.dispatch(2 * rows)
	putMatVecTask(t)
}

// matVecTask is the state of one fused matrix-vector loop. Tasks are
// pooled, so a decode step allocates nothing.
type matVecTask struct {
	mats   [maxFused]MatVec
	nm     int
	first  [maxFused + 1]int // first chunk of each matrix
	chunk  int               // rows per chunk
	swiglu bool              // mats[0] is the gate, mats[1] the up projection
	x      []float32
	xh, xl []uint16
	split  *splitBuf
	cols   int
	set    isa
}

var matVecTasks = sync.Pool{New: func() any { return new(matVecTask) }}

// getMatVecTask returns a task for x with the bf16 split of x done when
// the active implementation needs it.
func getMatVecTask(x []float32, cols int) *matVecTask {
	t := matVecTasks.Get().(*matVecTask)
	t.set, t.cols, t.x = active, cols, x[:cols]
	if t.set == isaAVX512BF16 {
		t.split = getSplit(t.x)
		t.xh, t.xl = t.split.hi, t.split.lo
	}
	return t
}

func putMatVecTask(t *matVecTask) {
	if t.split != nil {
		splitPool.Put(t.split)
	}
	*t = matVecTask{}
	matVecTasks.Put(t)
}

// dispatch splits the matrices into chunks of rows (total rows in all)
// and runs them on the pool.
func (t *matVecTask) dispatch(total int) {
	t.chunk = matVecChunk(total, t.cols, Threads())
	if t.swiglu {
		// total counts both matrices; a chunk covers the same rows of
		// each, and a multiple of 8 keeps the vector activation whole.
		t.chunk = max(8, (t.chunk/2+7)&^7)
	}
	n := 0
	for i := 0; i < t.nm; i++ {
		t.first[i] = n
		n += (t.mats[i].Rows + t.chunk - 1) / t.chunk
		if t.swiglu {
			break
		}
	}
	t.first[t.nm] = n
	parallelTask(n, 1, t)
}

func (t *matVecTask) run(c0, c1 int) {
	for c := c0; c < c1; c++ {
		i := 0
		for !t.swiglu && c >= t.first[i+1] {
			i++
		}
		m := &t.mats[i]
		r0 := (c - t.first[i]) * t.chunk
		r1 := min(r0+t.chunk, m.Rows)
		matVecRows(m.Y, m.W, t.x, t.xh, t.xl, r0, r1, t.cols, t.set)
		if t.swiglu {
			u := &t.mats[1]
			matVecRows(u.Y, u.W, t.x, t.xh, t.xl, r0, r1, t.cols, t.set)
			siluMul(m.Y[r0:r1], u.Y[r0:r1])
		}
	}
}

// matMulChunk picks the rows per parallel chunk of a matrix product so a
// chunk of weights (≈ 256 KiB) stays in the core's L2 cache while every
// token passes over it.
func matMulChunk(rows, cols, threads int) int {
	c := (256 << 10) / max(2*cols, 1)
	if most := rows / (threads * 4); c > most {
		c = most
	}
	return max(4, c&^3)
}

// MatMulBF16 computes y[n*rows+r] = Σ_c w[r*cols+c] · x[n*cols+c] for n in
// [0, tokens): the BF16 weight matrix applied to a batch of row-major
// activations, writing one output row per token. Work is spread over
// Threads() goroutines, and each weight is loaded once per block of tokens.
func MatMulBF16(y []float32, w []uint16, x []float32, tokens, rows, cols int) {
	checkMat("MatMulBF16", len(y), len(w), len(x), tokens, rows, cols)
	if rows == 0 || tokens == 0 {
		return
	}
	if tokens == 1 {
		MatVecBF16(y, w, x, rows, cols)
		return
	}
	set := active
	x = x[:tokens*cols]
	var xh, xl []uint16
	if set == isaAVX512BF16 {
		b := getSplit(x)
		defer splitPool.Put(b)
		xh, xl = b.hi, b.lo
	}
	chunk := matMulChunk(rows, cols, Threads())
	ParallelChunks(rows, chunk, func(r0, r1 int) {
		matMulRows(y, w, x, xh, xl, tokens, rows, cols, r0, r1, set)
	})
}

// DotF32 returns Σ a[i]·b[i] over len(a); len(b) ≥ len(a).
func DotF32(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	_ = b[len(a)-1]
	return dotF32(a, b)
}

// AxpyF32 computes y[i] += a·x[i] over len(y); len(x) ≥ len(y).
func AxpyF32(y []float32, a float32, x []float32) {
	if len(y) == 0 {
		return
	}
	_ = x[len(y)-1]
	axpyF32(y, a, x)
}

// DotsF32 computes out[j] = Σ_c q[c]·keys[j*stride+c] for j < len(out) and
// c < len(q): one query against len(out) rows of a row-major matrix, such
// as the cached keys of one attention head (stride = the cache's row
// length). It panics if keys is too short.
func DotsF32(out, q, keys []float32, stride int) {
	if len(out) == 0 || len(q) == 0 {
		clear(out)
		return
	}
	if stride < len(q) || len(keys) < (len(out)-1)*stride+len(q) {
		panic(fmt.Sprintf("kernels.DotsF32: len(keys)=%d too short for %d rows of stride %d and width %d", len(keys), len(out), stride, len(q)))
	}
	dotsF32(out, q, keys, stride)
}

// AxpysF32 computes out[c] += Σ_j p[j]·vals[j*stride+c] for j < len(p) and
// c < len(out): the probability-weighted sum of len(p) rows, such as the
// cached values of one attention head. It panics if vals is too short.
func AxpysF32(out, p, vals []float32, stride int) {
	if len(out) == 0 || len(p) == 0 {
		return
	}
	if stride < len(out) || len(vals) < (len(p)-1)*stride+len(out) {
		panic(fmt.Sprintf("kernels.AxpysF32: len(vals)=%d too short for %d rows of stride %d and width %d", len(vals), len(p), stride, len(out)))
	}
	axpysF32(out, p, vals, stride)
}

// AttendHead computes scaled dot-product attention of one query over n
// cached positions of one head:
//
//	out = Σ_j softmax_j(scale · q·keys[j*stride:]) · vals[j*stride:]
//
// for j < n, with len(out) = len(q) = head width. scores is scratch space
// of at least n floats. Causal masking is the caller's choice of n.
func AttendHead(out, q, keys, vals []float32, stride, n int, scale float32, scores []float32) {
	if n <= 0 {
		clear(out)
		return
	}
	sc := scores[:n]
	DotsF32(sc, q, keys, stride)
	for j := range sc {
		sc[j] *= scale
	}
	SoftmaxInPlace(sc)
	clear(out)
	AxpysF32(out, sc, vals, stride)
}
