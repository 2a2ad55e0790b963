package runtime

import (
	"math"
	"testing"
)

func TestExpfAccuracy(t *testing.T) {
	var worst float64
	for x := float32(-87); x <= 88; x += 0.000731 {
		want := math.Exp(float64(x))
		got := float64(expf(x))
		rel := math.Abs(got-want) / want
		worst = max(worst, rel)
	}
	if worst > 3e-7 {
		t.Fatalf("worst relative error %.3g", worst)
	}
	if expf(-100) != 0 || !math.IsInf(float64(expf(100)), 1) || expf(0) != 1 {
		t.Fatal("expf limits")
	}
	t.Logf("worst relative error %.3g", worst)
}

func BenchmarkExpf(b *testing.B) {
	var s float32
	for i := 0; i < b.N; i++ {
		s += expf(-float32(i&1023) * 0.01)
	}
	_ = s
}

func BenchmarkMathExp(b *testing.B) {
	var s float32
	for i := 0; i < b.N; i++ {
		s += float32(math.Exp(-float64(i&1023) * 0.01))
	}
	_ = s
}
