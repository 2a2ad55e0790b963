package runtime

import (
	"fmt"
	"math"

	"github.com/nlpodyssey/spago/mat"

	"github.com/airlock-dev/airlock/runtime/kernels"
	"github.com/airlock-dev/airlock/runtime/safetensors"
)

// Weight is a row-major [Rows, Cols] matrix. BF16 weights stay in their
// on-disk bit patterns (a view of the mapped file); F16 and F32 weights are
// held as float32.
type Weight struct {
	Name       string
	Rows, Cols int
	BF16       []uint16  // non-nil for BF16 weights
	F32        []float32 // non-nil for F16/F32 weights
}

// Bytes returns the bytes read to apply the weight once.
func (w *Weight) Bytes() int64 {
	if w.BF16 != nil {
		return int64(len(w.BF16)) * 2
	}
	return int64(len(w.F32)) * 4
}

// Row writes row r converted to float32 into dst.
func (w *Weight) Row(dst []float32, r int) {
	if w.BF16 != nil {
		for i, b := range w.BF16[r*w.Cols : (r+1)*w.Cols] {
			dst[i] = math.Float32frombits(uint32(b) << 16)
		}
		return
	}
	copy(dst, w.F32[r*w.Cols:(r+1)*w.Cols])
}

// Dense returns the weight upcast to a float32 spago matrix (reference path).
func (w *Weight) Dense() *mat.Dense[float32] {
	data := make([]float32, w.Rows*w.Cols)
	for r := 0; r < w.Rows; r++ {
		w.Row(data[r*w.Cols:(r+1)*w.Cols], r)
	}
	return mat.NewDense[float32](mat.WithShape(w.Rows, w.Cols), mat.WithBacking(data))
}

// MatVec computes y = W x for one activation vector; the kernels spread the
// rows over every core.
func (w *Weight) MatVec(y, x []float32) {
	if w.BF16 != nil {
		kernels.MatVecBF16(y, w.BF16, x, w.Rows, w.Cols)
		return
	}
	cols := w.Cols
	kernels.Parallel(w.Rows, func(lo, hi int) {
		matVecF32(y[lo:hi], w.F32[lo*cols:hi*cols], x, hi-lo, cols)
	})
}

// MatMul computes y[t] = W x[t] for tokens activation rows (x is
// [tokens, Cols], y is [tokens, Rows]); BF16 kernels read each block of
// weights once for all tokens.
func (w *Weight) MatMul(y, x []float32, tokens int) {
	if w.BF16 != nil {
		kernels.MatMulBF16(y, w.BF16, x, tokens, w.Rows, w.Cols)
		return
	}
	rows, cols := w.Rows, w.Cols
	kernels.Parallel(rows, func(lo, hi int) {
		for t := 0; t < tokens; t++ {
			matVecF32(y[t*rows+lo:t*rows+hi], w.F32[lo*cols:hi*cols], x[t*cols:(t+1)*cols], hi-lo, cols)
		}
	})
}

func matVecF32(y, w, x []float32, rows, cols int) {
	x = x[:cols]
	for r := 0; r < rows; r++ {
		y[r] = kernels.DotF32(w[r*cols:(r+1)*cols], x)
	}
}

// loadWeight fetches a 2-D weight and checks its shape.
func loadWeight(st *safetensors.Set, name string, rows, cols int) (Weight, error) {
	t, ok := st.Tensor(name)
	if !ok {
		return Weight{}, fmt.Errorf("tensor %s is missing", name)
	}
	if len(t.Shape) != 2 || t.Shape[0] != rows || t.Shape[1] != cols {
		return Weight{}, fmt.Errorf("tensor %s has shape %v, want [%d %d]", name, t.Shape, rows, cols)
	}
	w := Weight{Name: name, Rows: rows, Cols: cols}
	switch t.DType {
	case safetensors.BF16:
		w.BF16 = t.Uint16s()
	case safetensors.F16, safetensors.F32:
		w.F32 = t.Float32s()
	default:
		return Weight{}, fmt.Errorf("tensor %s has unsupported dtype %s", name, t.DType)
	}
	return w, nil
}

// loadVector fetches a 1-D tensor (norm weight or bias) as float32.
func loadVector(st *safetensors.Set, name string, n int) ([]float32, error) {
	t, ok := st.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("tensor %s is missing", name)
	}
	if len(t.Shape) != 1 || t.Shape[0] != n {
		return nil, fmt.Errorf("tensor %s has shape %v, want [%d]", name, t.Shape, n)
	}
	return t.Float32s(), nil
}
