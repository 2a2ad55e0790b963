package bundle

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
)

// benchSize is the weight bytes per benchmark iteration.
const benchSize = 256 << 20

// BenchmarkWrite measures bundling bf16-like weights under each policy into
// a file on disk (page cache); b.SetBytes makes -bench report MB/s.
func BenchmarkWrite(b *testing.B) {
	data := weightLike(benchSize, 5)
	_, priv := testKey(b)
	snap := &source.Snapshot{Source: manifests.Source{Kind: "local", ID: "bench"}, Files: []source.File{{
		Entry: manifests.File{Path: "model.safetensors", Size: int64(len(data)), Role: manifests.RoleWeights},
		Open:  func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}}}
	for _, c := range []Compression{CompressStore, CompressFast, CompressAuto} {
		b.Run(string(c), func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(int64(len(data)))
			var size int64
			for i := 0; i < b.N; i++ {
				f, err := os.Create(filepath.Join(dir, "b.tar.zst"))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Write(context.Background(), f, snap, Options{Signer: priv, Name: "bench", Compression: c}); err != nil {
					b.Fatal(err)
				}
				size, _ = f.Seek(0, io.SeekCurrent)
				f.Close()
			}
			b.ReportMetric(float64(size)/float64(len(data)), "ratio")
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heapMiB")
			_ = fmt.Sprint()
		})
	}
}
