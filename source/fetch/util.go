package fetch

import (
	"encoding/json"
	"math/rand/v2"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// jitter returns a random value in [0, n).
func jitter(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}
