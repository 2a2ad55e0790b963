package fetch

import (
	"bytes"
	"context"
	stdsha256 "crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	simdsha256 "github.com/minio/sha256-simd"
)

// throttled limits each response (each connection) to rate bytes/s, like a
// CDN that caps per-connection bandwidth.
type throttled struct {
	http.ResponseWriter
	rate  float64
	start time.Time
	sent  int
}

func (t *throttled) Write(p []byte) (int, error) {
	const chunk = 32 << 10
	n := 0
	for len(p) > 0 {
		k := min(chunk, len(p))
		m, err := t.ResponseWriter.Write(p[:k])
		n += m
		t.sent += m
		if err != nil {
			return n, err
		}
		p = p[k:]
		due := t.start.Add(time.Duration(float64(t.sent) / t.rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
	return n, nil
}

func benchServer(b *testing.B, data []byte, rate float64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out http.ResponseWriter = w
		if rate > 0 {
			out = &throttled{ResponseWriter: w, rate: rate, start: time.Now()}
		}
		http.ServeContent(out, r, "", time.Time{}, bytes.NewReader(data))
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkDownload compares the downloader with a plain http.Get + copy +
// sha256 (the baseline), on loopback, unthrottled and with each connection
// capped at 64 MiB/s.
//
//	go test -run '^$' -bench Download -benchtime 5x -count 5 ./source/fetch/
func BenchmarkDownload(b *testing.B) {
	const size = 64 << 20
	data := bytes.Repeat([]byte("airlock-benchmark-"), size/18+1)[:size]
	sum := stdsha256.Sum256(data)
	want := fmt.Sprintf("%x", sum)
	for _, rate := range []float64{0, 64 << 20} {
		srv := benchServer(b, data, rate)
		name := "unthrottled"
		if rate > 0 {
			name = "64MiBps-per-conn"
		}
		b.Run(name+"/baseline-get-copy-hash", func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				dir := b.TempDir()
				resp, err := http.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				f, _ := os.Create(filepath.Join(dir, "x"))
				h := simdsha256.New()
				if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				f.Close()
				if fmt.Sprintf("%x", h.Sum(nil)) != want {
					b.Fatal("hash")
				}
			}
		})
		for _, parts := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/fetch-%dpart", name, parts), func(b *testing.B) {
				b.SetBytes(size)
				for range b.N {
					c := &Client{
						Cache: &Cache{Dir: b.TempDir()}, Progress: io.Discard,
						Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
						PartSize: size/int64(parts) + 1, Jobs: 4,
					}
					if _, err := c.Fetch(context.Background(), Item{Name: "x", URL: srv.URL, Size: size, SHA256: want}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSHA256 compares github.com/minio/sha256-simd (used for cache
// verification) with crypto/sha256.
//
//	go test -run '^$' -bench SHA256 -count 5 ./source/fetch/
func BenchmarkSHA256(b *testing.B) {
	buf := bytes.Repeat([]byte{0x5a}, 8<<20)
	b.Run("crypto-sha256", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for range b.N {
			stdsha256.Sum256(buf)
		}
	})
	b.Run("sha256-simd", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for range b.N {
			simdsha256.Sum256(buf)
		}
	})
}
