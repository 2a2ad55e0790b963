package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/bundle"
	"github.com/airlock-dev/airlock/internal/signing"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source/local"
)

var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/bundle-vectors from its inputs")

const vectorDir = "../testdata/bundle-vectors"

// vectorCase is one entry of vectors.json.
type vectorCase struct {
	File  string `json:"file"`
	Valid bool   `json:"valid"`
	Error string `json:"error,omitempty"` // substring of the refusal
	Note  string `json:"note"`
}

func vectorPath(p string) string { return filepath.Join(vectorDir, p) }

// buildVector bundles the vector inputs exactly as documented in the
// vectors' README.
func buildVector(t *testing.T, priv signing.PrivateKey) []byte {
	t.Helper()
	snap, err := local.Dir{Root: vectorPath("input"), Name: "vector-model"}.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := bundle.Write(context.Background(), &buf, snap, bundle.Options{
		Signer: &priv, Name: "vector-model", CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ToolVersion: "vector",
	}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBundleVectors(t *testing.T) {
	if *updateVectors {
		writeVectors(t)
	}
	pub, err := signing.LoadPublicKey(vectorPath("test.pub"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signing.LoadPrivateKey(vectorPath("test.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The format is stable: the same inputs still give the same bytes.
	good, err := os.ReadFile(vectorPath("good.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buildVector(t, priv), good) {
		t.Fatal("bundling the vector inputs no longer reproduces good.tar.zst: the format or its compression changed; " +
			"if intended, document it in docs/bundle-format.md and run go test ./verify -run Vectors -args -update-vectors")
	}
	var cases []vectorCase
	b, err := os.ReadFile(vectorPath("vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 5 {
		t.Fatalf("only %d vectors", len(cases))
	}
	wantManifest, err := os.ReadFile(vectorPath("good.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "model")
			_, err := Extract(context.Background(), vectorPath(c.File), pub, out, Options{NoSync: true})
			if c.Valid {
				if err != nil {
					t.Fatalf("valid vector refused: %v", err)
				}
				got, _ := os.ReadFile(filepath.Join(out, filepath.FromSlash(manifests.ManifestPath)))
				if !bytes.Equal(got, wantManifest) {
					t.Fatal("installed manifest differs from good.manifest.json")
				}
				if _, err := CheckDir(out, pub, DirOptions{FullHashes: true}); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.Error) {
				t.Fatalf("err = %v, want %q", err, c.Error)
			}
		})
	}
}

// writeVectors regenerates the vector files (inputs, key pair and the
// derived bundles are all deterministic except the key, which is kept once
// created).
func writeVectors(t *testing.T) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(vectorPath("input"), 0o755))
	if _, err := os.Stat(vectorPath("test.key")); err != nil {
		pub, priv, err := signing.GenerateKey(nil)
		must(err)
		must(os.WriteFile(vectorPath("test.pub"), pub, 0o644))
		must(os.WriteFile(vectorPath("test.key"), priv, 0o644))
	}
	// Inputs: two small text files and 1 MiB + 4 KiB of bf16-like weights, big
	// enough for the auto policy to store them.
	r := rand.New(rand.NewPCG(2026, 1))
	w := make([]byte, 1<<20+4096)
	for i := 0; i+1 < len(w); i += 2 {
		bits := math.Float32bits(float32(r.NormFloat64() * 0.02))
		w[i], w[i+1] = byte(bits>>16), byte(bits>>24)
	}
	must(os.WriteFile(vectorPath("input/model.safetensors"), w, 0o644))
	must(os.WriteFile(vectorPath("input/config.json"), []byte("{\"model_type\": \"qwen2\", \"hidden_size\": 64}\n"), 0o644))
	must(os.WriteFile(vectorPath("input/tokenizer.json"), []byte(strings.Repeat("{\"token\": \"abc\"}\n", 200)), 0o644))

	priv, err := signing.LoadPrivateKey(vectorPath("test.key"), nil)
	must(err)
	good := buildVector(t, priv)
	must(os.WriteFile(vectorPath("good.tar.zst"), good, 0o644))
	r2, err := bundle.NewReader(bytes.NewReader(good))
	must(err)
	body, _, err := r2.ReadHeader()
	r2.Close()
	must(err)
	must(os.WriteFile(vectorPath("good.manifest.json"), body, 0o644))

	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-1000] ^= 0x01 // inside model.safetensors' stored blocks
	must(os.WriteFile(vectorPath("flipped-byte.tar.zst"), flipped, 0o644))
	must(os.WriteFile(vectorPath("truncated.tar.zst"), good[:len(good)*2/3], 0o644))
	_, otherText, err := signing.GenerateKey(nil)
	must(err)
	other, err := signing.ParsePrivateKey(otherText, nil)
	must(err)
	must(os.WriteFile(vectorPath("wrong-key.tar.zst"), buildVector(t, other), 0o644))
	tampered := bytes.Replace(good, []byte(`"vector-model"`), []byte(`"vector-modeL"`), 1)
	must(os.WriteFile(vectorPath("tampered-manifest.tar.zst"), tampered, 0o644))

	cases := []vectorCase{
		{File: "good.tar.zst", Valid: true, Note: "the vector inputs bundled with test.key; verifies with test.pub"},
		{File: "flipped-byte.tar.zst", Error: "", Note: "one bit flipped inside model.safetensors' stored data"},
		{File: "truncated.tar.zst", Error: "corrupt or truncated", Note: "the first two thirds of good.tar.zst"},
		{File: "wrong-key.tar.zst", Error: "but the trusted key is", Note: "the same inputs signed by another key"},
		{File: "tampered-manifest.tar.zst", Error: "signature does not match", Note: "the manifest's name edited in place (the header frame is stored)"},
	}
	// Record the exact refusal of the flipped byte.
	_, ferr := Extract(context.Background(), vectorPath("flipped-byte.tar.zst"), mustPub(t), filepath.Join(t.TempDir(), "x"), Options{NoSync: true})
	if ferr == nil {
		t.Fatal("flipped vector accepted")
	}
	if strings.Contains(ferr.Error(), "checksum") {
		cases[1].Error = "checksum"
	} else {
		cases[1].Error = "sha256"
	}
	b, err := json.MarshalIndent(cases, "", "  ")
	must(err)
	must(os.WriteFile(vectorPath("vectors.json"), append(b, '\n'), 0o644))
}

func mustPub(t *testing.T) signing.PublicKey {
	pub, err := signing.LoadPublicKey(vectorPath("test.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
