package runtime

import (
	"encoding/json"
	"math"
	"os"
	"sync"
	"testing"
)

const tinyDir = "../testdata/tiny-qwen2"

type expectedFile struct {
	FixedIDs []int `json:"fixed_ids"`
	Steps    int   `json:"steps"`
	Prompts  []struct {
		Name         string `json:"name"`
		IDs          []int  `json:"ids"`
		LastPosition struct {
			Top50       [][2]float64 `json:"top50"`
			FixedLogits []float64    `json:"fixed_logits"`
			Max         float64      `json:"max"`
			Argmax      int          `json:"argmax"`
			Mean        float64      `json:"mean"`
			Std         float64      `json:"std"`
		} `json:"last_position"`
		PerPositionArgmax []int     `json:"per_position_argmax"`
		PerPositionMax    []float64 `json:"per_position_max"`
		Greedy            struct {
			Tokens    []int     `json:"tokens"`
			Top1Logit []float64 `json:"top1_logit"`
		} `json:"greedy"`
	} `json:"prompts"`
}

func loadExpected(t testing.TB) *expectedFile {
	t.Helper()
	data, err := os.ReadFile(tinyDir + "/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e expectedFile
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Prompts) != 4 || e.Steps != 24 {
		t.Fatalf("expected.json: %d prompts, %d steps", len(e.Prompts), e.Steps)
	}
	return &e
}

var (
	tinyOnce  sync.Once
	tinyModel *Model
	tinyErr   error
)

// loadTiny returns the tiny-qwen2 model, loaded once and shared read-only by
// the tests (which is also how the server uses a Model).
func loadTiny(t testing.TB) *Model {
	t.Helper()
	tinyOnce.Do(func() { tinyModel, tinyErr = Load(tinyDir, LoadOptions{}) })
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyModel
}

const logitTol = 1e-3

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// checkLastLogits applies the fixture's recommended checks to one logit
// vector.
func checkLastLogits(t *testing.T, label string, e *expectedFile, pi int, logits []float32) {
	t.Helper()
	lp := e.Prompts[pi].LastPosition
	bad := 0
	for _, p := range lp.Top50 {
		if d := math.Abs(float64(logits[int(p[0])]) - p[1]); d > logitTol {
			bad++
			if bad < 5 {
				t.Errorf("%s: logit[%d] = %v, want %v (|Δ| %.2g)", label, int(p[0]), logits[int(p[0])], p[1], d)
			}
		}
	}
	for i, id := range e.FixedIDs {
		if d := math.Abs(float64(logits[id]) - lp.FixedLogits[i]); d > logitTol {
			t.Errorf("%s: fixed logit[%d] = %v, want %v", label, id, logits[id], lp.FixedLogits[i])
		}
	}
	am := argmax(logits)
	if am != lp.Argmax {
		t.Errorf("%s: argmax %d, want %d", label, am, lp.Argmax)
	}
	if d := math.Abs(float64(logits[am]) - lp.Max); d > logitTol {
		t.Errorf("%s: max %v, want %v", label, logits[am], lp.Max)
	}
	var sum, sq float64
	for _, v := range logits {
		sum += float64(v)
	}
	mean := sum / float64(len(logits))
	for _, v := range logits {
		sq += (float64(v) - mean) * (float64(v) - mean)
	}
	std := math.Sqrt(sq / float64(len(logits)))
	if math.Abs(mean-lp.Mean) > 1e-4 || math.Abs(std-lp.Std) > 1e-4 {
		t.Errorf("%s: mean/std %v/%v, want %v/%v", label, mean, std, lp.Mean, lp.Std)
	}
}

// greedyContinue decodes steps tokens greedily after the cache holds the
// prompt and logits holds its last-position logits.
func greedyContinue(t *testing.T, m *Model, cache *KVCache, ws *workspace, steps int) ([]int, []float32) {
	t.Helper()
	var toks []int
	var top []float32
	for s := 0; s < steps; s++ {
		logits := ws.logits[:m.cfg.VocabSize]
		id := argmax(logits)
		toks = append(toks, id)
		top = append(top, logits[id])
		if s == steps-1 {
			break
		}
		if err := m.forward([]int{id}, cache, ws, logitsLast); err != nil {
			t.Fatal(err)
		}
	}
	return toks, top
}

func checkGreedy(t *testing.T, label string, e *expectedFile, pi int, toks []int, top []float32) {
	t.Helper()
	g := e.Prompts[pi].Greedy
	for i := range g.Tokens {
		if i >= len(toks) || toks[i] != g.Tokens[i] {
			t.Fatalf("%s: greedy tokens %v, want %v", label, toks, g.Tokens)
		}
		if d := math.Abs(float64(top[i]) - g.Top1Logit[i]); d > logitTol {
			t.Errorf("%s: step %d top1 logit %v, want %v", label, i, top[i], g.Top1Logit[i])
		}
	}
}

func TestExpectedPrefill(t *testing.T) {
	e := loadExpected(t)
	m := loadTiny(t)
	for pi, p := range e.Prompts {
		cache := m.NewKVCache(64)
		ws := m.newWorkspace(len(p.IDs))
		if err := m.forward(p.IDs, cache, ws, logitsLast); err != nil {
			t.Fatal(err)
		}
		checkLastLogits(t, p.Name+"/prefill", e, pi, ws.logits[:m.cfg.VocabSize])
		toks, top := greedyContinue(t, m, cache, ws, e.Steps)
		checkGreedy(t, p.Name+"/prefill", e, pi, toks, top)
	}
}

func TestExpectedTokenByToken(t *testing.T) {
	e := loadExpected(t)
	m := loadTiny(t)
	for pi, p := range e.Prompts {
		cache := m.NewKVCache(1) // forces the cache to grow
		ws := m.newWorkspace(1)
		for i, id := range p.IDs {
			if err := m.forward([]int{id}, cache, ws, logitsLast); err != nil {
				t.Fatal(err)
			}
			logits := ws.logits[:m.cfg.VocabSize]
			am := argmax(logits)
			if am != p.PerPositionArgmax[i] || math.Abs(float64(logits[am])-p.PerPositionMax[i]) > logitTol {
				t.Errorf("%s: position %d argmax %d (%v), want %d (%v)", p.Name, i, am, logits[am], p.PerPositionArgmax[i], p.PerPositionMax[i])
			}
		}
		checkLastLogits(t, p.Name+"/stepwise", e, pi, ws.logits[:m.cfg.VocabSize])
		toks, top := greedyContinue(t, m, cache, ws, e.Steps)
		checkGreedy(t, p.Name+"/stepwise", e, pi, toks, top)
	}
}

func TestExpectedReference(t *testing.T) {
	e := loadExpected(t)
	m := loadTiny(t)
	for pi, p := range e.Prompts {
		all, err := m.referenceForward(p.IDs)
		if err != nil {
			t.Fatal(err)
		}
		for i, logits := range all {
			am := argmax(logits)
			if am != p.PerPositionArgmax[i] || math.Abs(float64(logits[am])-p.PerPositionMax[i]) > logitTol {
				t.Errorf("%s: reference position %d argmax %d (%v), want %d (%v)", p.Name, i, am, logits[am], p.PerPositionArgmax[i], p.PerPositionMax[i])
			}
		}
		checkLastLogits(t, p.Name+"/reference", e, pi, all[len(all)-1])
	}
}
