package modelscope

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
	"github.com/airlock-dev/airlock/source/fakehub"
	"github.com/airlock-dev/airlock/source/fetch"
)

const qwen = "qwen/Qwen1.5-0.5B-Chat"

func TestMain(m *testing.M) {
	progress.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

func newSource(t *testing.T, hub *fakehub.Hub) *Source {
	t.Helper()
	return &Source{
		Endpoint: hub.URL,
		Model:    qwen,
		Revision: "master",
		Fetch: &fetch.Client{
			Cache:        &fetch.Cache{Dir: t.TempDir()},
			Progress:     io.Discard,
			Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
			Backoff:      time.Millisecond,
			MaxBackoff:   5 * time.Millisecond,
			StallTimeout: 2 * time.Second,
		},
	}
}

func newHub(t *testing.T, m fakehub.Model) *fakehub.Hub {
	t.Helper()
	hub := fakehub.New()
	t.Cleanup(hub.Close)
	hub.AddModel(m)
	return hub
}

// checkSnapshot asserts the snapshot holds exactly the real file list with
// upstream bytes, checksums, revisions and roles.
func checkSnapshot(t *testing.T, snap *source.Snapshot, m fakehub.Model) {
	t.Helper()
	if snap.Source != (manifests.Source{Kind: "modelscope", ID: qwen, Revision: "master"}) {
		t.Fatalf("source = %+v", snap.Source)
	}
	want := map[string]fakehub.File{}
	for _, f := range m.Files {
		if f.Path != ".gitattributes" {
			want[f.Path] = f
		}
	}
	if len(snap.Files) != len(fakehub.QwenChatFiles) || len(want) != len(snap.Files) {
		t.Fatalf("got %d files, want %d", len(snap.Files), len(fakehub.QwenChatFiles))
	}
	for _, f := range snap.Files {
		w, ok := want[f.Entry.Path]
		if !ok {
			t.Fatalf("unexpected file %s", f.Entry.Path)
		}
		if f.Entry.SHA256 != fakehub.SHA256(w.Data) || f.Entry.Size != int64(len(w.Data)) || f.Entry.UpstreamRevision != w.Revision {
			t.Fatalf("%s: entry %+v", f.Entry.Path, f.Entry)
		}
		rc, err := f.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != string(w.Data) {
			t.Fatalf("%s: bytes differ", f.Entry.Path)
		}
	}
	roles := map[string]manifests.Role{"model.safetensors": manifests.RoleWeights, "tokenizer.json": manifests.RoleTokenizer,
		"vocab.json": manifests.RoleTokenizer, "merges.txt": manifests.RoleTokenizer, "config.json": manifests.RoleConfig, "LICENSE": manifests.RoleExtra}
	for _, f := range snap.Files {
		if r, ok := roles[f.Entry.Path]; ok && f.Entry.Role != r {
			t.Fatalf("%s: role %s, want %s", f.Entry.Path, f.Entry.Role, r)
		}
	}
}

func TestResolveHappyPath(t *testing.T) {
	m := fakehub.QwenChat(64 << 10)
	hub := newHub(t, m)
	s := newSource(t, hub)
	snap, err := s.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, m)
	reqs := hub.Requests("")
	if reqs[0].Path != "/api/v1/models/qwen/Qwen1.5-0.5B-Chat/revisions" {
		t.Fatalf("first request %s", reqs[0].Path)
	}
	if q := reqs[1].Query; reqs[1].Path != "/api/v1/models/qwen/Qwen1.5-0.5B-Chat/repo/files" || q.Get("Revision") != "master" || q.Get("Recursive") != "True" {
		t.Fatalf("listing request %+v", reqs[1])
	}
	for _, r := range reqs {
		if !strings.HasPrefix(r.UserAgent, "airlock/") {
			t.Fatalf("user agent %q", r.UserAgent)
		}
		if r.HasToken {
			t.Fatal("token sent though none configured")
		}
		if r.File == ".gitattributes" {
			t.Fatal(".gitattributes downloaded")
		}
	}
	if n := len(hub.Requests("model.safetensors")); n != 1 {
		t.Fatalf("weights fetched %d times", n)
	}
	// A second resolve lists again but downloads nothing.
	before := len(hub.Requests(""))
	if _, err := s.Resolve(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(hub.Requests("")) - before; got != 2 {
		t.Fatalf("re-resolve made %d requests, want 2 (revisions + listing)", got)
	}
}

func TestResolveFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		setup     func(*fakehub.Hub, *Source)
		wantErr   []string // substrings; empty means success
		wantReqs  int      // download requests of model.safetensors, if > 0
		wantRange string   // Range of the last model.safetensors request
	}{
		{
			name: "dropped mid-file resumes with one Range request",
			setup: func(h *fakehub.Hub, _ *Source) {
				h.Inject(qwen, "model.safetensors", fakehub.Fault{Kind: fakehub.Drop, Bytes: 40_000})
			},
			wantReqs: 2, wantRange: "bytes=40000-65535",
		},
		{
			name: "500s then success",
			setup: func(h *fakehub.Hub, _ *Source) {
				h.Inject(qwen, "model.safetensors", fakehub.Fault{Kind: fakehub.Status, Code: 500}, fakehub.Fault{Kind: fakehub.Status, Code: 500})
			},
			wantReqs: 3,
		},
		{
			name: "bytes do not match Sha256",
			setup: func(h *fakehub.Hub, _ *Source) {
				h.Inject(qwen, "model.safetensors", fakehub.Fault{Kind: fakehub.Corrupt}, fakehub.Fault{Kind: fakehub.Corrupt})
			},
			wantErr: []string{"model.safetensors", "sha256 mismatch"},
		},
		{
			name: "empty body then good",
			setup: func(h *fakehub.Hub, _ *Source) {
				h.Inject(qwen, "model.safetensors", fakehub.Fault{Kind: fakehub.Empty})
			},
			wantReqs: 2,
		},
		{
			name: "empty body every time",
			setup: func(h *fakehub.Hub, s *Source) {
				s.Fetch.Attempts = 3
				for range 3 {
					h.Inject(qwen, "model.safetensors", fakehub.Fault{Kind: fakehub.Empty})
				}
			},
			wantErr: []string{"model.safetensors", "empty response body"},
		},
		{
			name: "200 answer to a Range request restarts from zero",
			setup: func(h *fakehub.Hub, _ *Source) {
				h.Inject(qwen, "model.safetensors", fakehub.Fault{Kind: fakehub.Drop, Bytes: 1000}, fakehub.Fault{Kind: fakehub.IgnoreRange})
			},
			wantReqs: 2, wantRange: "bytes=1000-65535",
		},
		{
			name:    "unknown revision",
			setup:   func(_ *fakehub.Hub, s *Source) { s.Revision = "v9" },
			wantErr: []string{`unknown revision "v9"`, "branches: master", "tags: v1.0.0"},
		},
		{
			name:    "unknown model",
			setup:   func(_ *fakehub.Hub, s *Source) { s.Model = "qwen/Nope" },
			wantErr: []string{"HTTP 404", "model qwen/Nope not found"},
		},
		{
			name: "private model without token",
			setup: func(h *fakehub.Hub, _ *Source) {
				m := fakehub.QwenChat(64 << 10)
				m.Token = "s3cret-token"
				h.AddModel(m)
			},
			wantErr: []string{"HTTP 401", "login required", "MODELSCOPE_API_TOKEN"},
		},
		{
			name: "private model with wrong token",
			setup: func(h *fakehub.Hub, s *Source) {
				m := fakehub.QwenChat(64 << 10)
				m.Token = "s3cret-token"
				h.AddModel(m)
				s.Token = "wrong"
			},
			wantErr: []string{"HTTP 403", "no permission"},
		},
		{
			name: "private model with token",
			setup: func(h *fakehub.Hub, s *Source) {
				m := fakehub.QwenChat(64 << 10)
				m.Token = "s3cret-token"
				h.AddModel(m)
				s.Token = "s3cret-token"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := fakehub.QwenChat(64 << 10)
			hub := newHub(t, m)
			s := newSource(t, hub)
			tc.setup(hub, s)
			snap, err := s.Resolve(context.Background())
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("resolve succeeded, want error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatal("token leaked into error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, snap, m)
			reqs := hub.Requests("model.safetensors")
			if tc.wantReqs > 0 && len(reqs) != tc.wantReqs {
				t.Fatalf("model.safetensors requests = %d, want %d: %+v", len(reqs), tc.wantReqs, reqs)
			}
			if tc.wantRange != "" && reqs[len(reqs)-1].Range != tc.wantRange {
				t.Fatalf("last Range = %q, want %q", reqs[len(reqs)-1].Range, tc.wantRange)
			}
			if s.Token != "" {
				for _, r := range hub.Requests("") {
					if !r.HasToken {
						t.Fatalf("request %s without token cookie", r.Path)
					}
				}
			}
		})
	}
}

func TestResolveRetriesAPIErrors(t *testing.T) {
	m := fakehub.QwenChat(1000)
	hub := newHub(t, m)
	hub.Inject(qwen, "@revisions", fakehub.Fault{Kind: fakehub.Status, Code: 503, RetryAfter: "0"})
	hub.Inject(qwen, "@repo/files", fakehub.Fault{Kind: fakehub.Status, Code: 500})
	snap, err := newSource(t, hub).Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, m)

	for range 4 {
		hub.Inject(qwen, "@repo/files", fakehub.Fault{Kind: fakehub.Status, Code: 502})
	}
	_, err = newSource(t, hub).Resolve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 502") || !strings.Contains(err.Error(), "files of qwen/Qwen1.5-0.5B-Chat@master") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add("modelscope://qwen/Qwen1.5-0.5B-Chat@master")
	f.Add("modelscope://a/b")
	f.Fuzz(func(t *testing.T, spec string) {
		model, rev, err := ParseSpec(spec)
		if err != nil {
			return
		}
		if !modelIDPattern.MatchString(model) || strings.Contains(model, "..") {
			t.Fatalf("accepted model %q", model)
		}
		if err := manifests.CheckPath(model); err != nil {
			t.Fatalf("model %q is not a clean path: %v", model, err)
		}
		_ = rev
	})
}

func TestResolveIncludeExcludeAndBeforeDownload(t *testing.T) {
	hub := newHub(t, fakehub.QwenChat(1000))
	s := newSource(t, hub)
	s.Include = []string{"*.json"}
	s.Exclude = []string{"configuration.json"}
	stop := errors.New("stop")
	var listed []string
	s.BeforeDownload = func(snap *source.Snapshot) error {
		for _, f := range snap.Files {
			listed = append(listed, f.Entry.Path)
		}
		return stop
	}
	if _, err := s.Resolve(context.Background()); !errors.Is(err, stop) {
		t.Fatalf("err = %v", err)
	}
	want := "config.json generation_config.json tokenizer.json tokenizer_config.json vocab.json"
	if got := strings.Join(listed, " "); got != want {
		t.Fatalf("selected %q, want %q", got, want)
	}
	for _, r := range hub.Requests("") {
		if r.File != "" {
			t.Fatalf("downloaded %s before BeforeDownload allowed it", r.File)
		}
	}
}

func TestResolveRefusesUnsafeListing(t *testing.T) {
	m := fakehub.QwenChat(1000)
	m.Files = append(m.Files, fakehub.File{Path: "../../etc/evil", Data: []byte("x")})
	hub := newHub(t, m)
	_, err := newSource(t, hub).Resolve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "unsafe path") {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveUnlistedChecksum(t *testing.T) {
	m := fakehub.QwenChat(1000)
	hub := newHub(t, m)
	// A hub that lists no Sha256 for a file: refused unless trusted.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/repo/files") {
			resp, err := http.Get(hub.URL + r.URL.RequestURI())
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			b = []byte(strings.Replace(string(b), `"Sha256":"`+fakehub.SHA256(m.Files[1].Data)+`"`, `"Sha256":""`, 1))
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
			return
		}
		http.Redirect(w, r, hub.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	s := newSource(t, hub)
	s.Endpoint = srv.URL
	_, err := s.Resolve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no sha256 for "+m.Files[1].Path) {
		t.Fatalf("err = %v", err)
	}
	s.TrustUnlisted = true
	snap, err := s.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, m)
}

func TestParseSpec(t *testing.T) {
	for spec, want := range map[string][2]string{
		"modelscope://qwen/Qwen1.5-0.5B-Chat":        {"qwen/Qwen1.5-0.5B-Chat", ""},
		"modelscope://qwen/Qwen1.5-0.5B-Chat@master": {"qwen/Qwen1.5-0.5B-Chat", "master"},
		"modelscope://qwen/Qwen1.5-0.5B-Chat@v1.0.0": {"qwen/Qwen1.5-0.5B-Chat", "v1.0.0"},
	} {
		m, r, err := ParseSpec(spec)
		if err != nil || m != want[0] || r != want[1] {
			t.Errorf("ParseSpec(%q) = %q %q %v", spec, m, r, err)
		}
	}
	for _, bad := range []string{"qwen/x", "modelscope://qwen", "modelscope://qwen/x/y", "modelscope://../x", "modelscope://qwen/x@", "modelscope://q wen/x"} {
		if _, _, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) accepted", bad)
		}
	}
}

func TestEndpointFromEnv(t *testing.T) {
	t.Setenv("MODELSCOPE_DOMAIN", "")
	if got := EndpointFromEnv(); got != DefaultEndpoint {
		t.Fatal(got)
	}
	t.Setenv("MODELSCOPE_DOMAIN", "modelscope.example.com")
	if got := EndpointFromEnv(); got != "https://modelscope.example.com" {
		t.Fatal(got)
	}
	s := &Source{Endpoint: "http://modelscope.example.com"}
	if _, err := s.endpoint(); err == nil {
		t.Fatal("plain http to a remote host accepted")
	}
}

func FuzzPlan(f *testing.F) {
	f.Add([]byte(`[{"Name":"config.json","Path":"config.json","Type":"blob","Size":10,"Sha256":"` + strings.Repeat("a", 64) + `","Revision":"r1"},{"Path":"sub","Type":"tree"}]`))
	f.Add([]byte(`[{"Path":"../x","Type":"blob","Sha256":"` + strings.Repeat("b", 64) + `"}]`))
	f.Add([]byte(`[{"Path":".gitattributes","Type":"blob"},{"Path":"a b/c.txt","Type":"blob","Size":1,"Sha256":"` + strings.Repeat("c", 64) + `"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var listing []RepoFile
		if json.Unmarshal(data, &listing) != nil {
			return
		}
		s := &Source{Model: qwen, Exclude: []string{"*.bin"}}
		snap, items, err := s.plan("https://hub.example", "master", listing)
		if err != nil {
			return
		}
		if len(items) != len(snap.Files) {
			t.Fatalf("%d items for %d files", len(items), len(snap.Files))
		}
		seen := map[string]bool{}
		for _, f := range snap.Files {
			e := f.Entry
			if err := manifests.CheckPath(e.Path); err != nil {
				t.Fatalf("unsafe path %q accepted: %v", e.Path, err)
			}
			if seen[e.Path] {
				t.Fatalf("%s twice", e.Path)
			}
			seen[e.Path] = true
			if strings.HasSuffix(e.Path, ".gitattributes") || strings.HasSuffix(e.Path, ".bin") {
				t.Fatalf("%s selected", e.Path)
			}
			if !isHex64(e.SHA256) || e.Size < 0 {
				t.Fatalf("unverifiable entry %+v", e)
			}
			if err := (&manifests.File{Path: e.Path, Size: e.Size, SHA256: e.SHA256, Role: e.Role, UpstreamRevision: e.UpstreamRevision}).Validate(); err != nil {
				t.Fatalf("entry the manifest would refuse: %v", err)
			}
		}
		for _, it := range items {
			if !strings.HasPrefix(it.URL, "https://hub.example/api/v1/models/qwen/Qwen1.5-0.5B-Chat/repo?") {
				t.Fatalf("download URL %q", it.URL)
			}
		}
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(200, []byte(`{"Code":200,"Data":{"Files":[]},"Message":"success","RequestId":"x","Success":true}`))
	f.Add(404, []byte(`{"Code":10010205001,"Message":"not found","Success":false}`))
	f.Add(200, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var out struct{ Files []RepoFile }
		err := decodeEnvelope("files", status, body, &out)
		if err == nil && status != 200 {
			t.Fatalf("status %d accepted", status)
		}
		var ae *APIError
		if err != nil && errors.As(err, &ae) && ae.Status != status {
			t.Fatalf("error status %d, answer %d", ae.Status, status)
		}
	})
}
