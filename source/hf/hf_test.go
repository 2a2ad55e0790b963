package hf

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/source/fakehub"
	"github.com/airlock-dev/airlock/source/fetch"
)

const qwen = "qwen/Qwen1.5-0.5B-Chat"

func TestMain(m *testing.M) {
	progress.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

func setup(t *testing.T, mutate func(*fakehub.Model)) (*fakehub.Hub, *Source, fakehub.Model) {
	t.Helper()
	hub := fakehub.New()
	t.Cleanup(hub.Close)
	m := fakehub.QwenChat(50_000)
	m.Branches = []string{"main"}
	if mutate != nil {
		mutate(&m)
	}
	hub.AddModel(m)
	return hub, &Source{
		Endpoint: hub.URL,
		Model:    qwen,
		Fetch: &fetch.Client{
			Cache: &fetch.Cache{Dir: t.TempDir()}, Progress: io.Discard,
			Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			Backoff: time.Millisecond, MaxBackoff: time.Millisecond,
		},
	}, m
}

func TestResolveHappyPath(t *testing.T) {
	hub, s, m := setup(t, nil)
	snap, err := s.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Source.Kind != "huggingface" || snap.Source.Revision != m.Commit {
		t.Fatalf("source %+v", snap.Source)
	}
	if len(snap.Files) != len(fakehub.QwenChatFiles) {
		t.Fatalf("%d files", len(snap.Files))
	}
	data := map[string][]byte{}
	for _, f := range m.Files {
		data[f.Path] = f.Data
	}
	for _, f := range snap.Files {
		if f.Entry.SHA256 != fakehub.SHA256(data[f.Entry.Path]) || f.Entry.Size != int64(len(data[f.Entry.Path])) {
			t.Fatalf("%s: entry %+v", f.Entry.Path, f.Entry)
		}
		rc, _ := f.Open(context.Background())
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != string(data[f.Entry.Path]) {
			t.Fatalf("%s: bytes differ", f.Entry.Path)
		}
	}
	for _, r := range hub.Requests("") {
		if strings.Contains(r.Path, "/resolve/") && !strings.Contains(r.Path, "/resolve/"+m.Commit+"/") {
			t.Fatalf("download not pinned to the commit: %s", r.Path)
		}
	}
	if q := hub.Requests("")[0]; q.Path != "/api/models/qwen/Qwen1.5-0.5B-Chat/revision/main" || q.Query.Get("blobs") != "true" {
		t.Fatalf("info request %+v", q)
	}
}

func TestResolveErrors(t *testing.T) {
	_, s, _ := setup(t, nil)
	s.Revision = "nope"
	_, err := s.Resolve(context.Background())
	if err == nil || !strings.Contains(err.Error(), `unknown revision "nope"`) || !strings.Contains(err.Error(), "branches: main") {
		t.Fatalf("err = %v", err)
	}

	_, s, _ = setup(t, func(m *fakehub.Model) { m.Token = "hf_secret" })
	_, err = s.Resolve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("err = %v", err)
	}
	s.Token = "hf_secret"
	if _, err := s.Resolve(context.Background()); err != nil {
		t.Fatalf("with token: %v", err)
	}

	hub, s, _ := setup(t, nil)
	hub.Inject(qwen, "README.md", fakehub.Fault{Kind: fakehub.Corrupt}, fakehub.Fault{Kind: fakehub.Corrupt})
	_, err = s.Resolve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "README.md") || !strings.Contains(err.Error(), "git blob id mismatch") {
		t.Fatalf("err = %v", err)
	}

	hub, s, _ = setup(t, nil)
	hub.Inject(qwen, "model.safetensors", fakehub.Fault{Kind: fakehub.Drop, Bytes: 20_000})
	if _, err := s.Resolve(context.Background()); err != nil {
		t.Fatal(err)
	}
	var reqs []fakehub.Request
	for _, r := range hub.Requests("model.safetensors") {
		if strings.HasPrefix(r.Path, "/cdn-lfs/") { // after the /resolve/ redirect
			reqs = append(reqs, r)
		}
	}
	if len(reqs) != 2 || reqs[1].Range != "bytes=20000-49999" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestParseSpec(t *testing.T) {
	m, r, err := ParseSpec("hf://Qwen/Qwen1.5-0.5B-Chat@main")
	if err != nil || m != "Qwen/Qwen1.5-0.5B-Chat" || r != "main" {
		t.Fatal(m, r, err)
	}
	if _, _, err := ParseSpec("huggingface://Qwen/x"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"hf://x", "hf://a/b/c", "hf://a/b@", "modelscope://a/b"} {
		if _, _, err := ParseSpec(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add("hf://Qwen/Qwen1.5-0.5B-Chat@main")
	f.Add("huggingface://a/b")
	f.Fuzz(func(t *testing.T, spec string) {
		model, _, err := ParseSpec(spec)
		if err != nil {
			return
		}
		if !modelIDPattern.MatchString(model) || strings.Contains(model, "..") || strings.Count(model, "/") != 1 {
			t.Fatalf("accepted model %q", model)
		}
	})
}
