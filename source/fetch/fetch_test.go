package fetch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/progress"
	"github.com/airlock-dev/airlock/source/fakehub"
)

const model = "qwen/Qwen1.5-0.5B-Chat"

type rig struct {
	hub    *fakehub.Hub
	client *Client
	waits  []time.Duration
	mu     sync.Mutex
	files  map[string][]byte
}

func newRig(t *testing.T, weights int) *rig {
	t.Helper()
	hub := fakehub.New()
	t.Cleanup(hub.Close)
	m := fakehub.QwenChat(weights)
	hub.AddModel(m)
	r := &rig{hub: hub, files: map[string][]byte{}}
	for _, f := range m.Files {
		r.files[f.Path] = f.Data
	}
	r.client = &Client{
		Cache:        &Cache{Dir: t.TempDir()},
		Progress:     io.Discard,
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		StallTimeout: 2 * time.Second,
		sleep: func(ctx context.Context, d time.Duration) error {
			r.mu.Lock()
			r.waits = append(r.waits, d)
			r.mu.Unlock()
			return ctx.Err()
		},
	}
	return r
}

func (r *rig) item(name string) Item {
	return Item{
		Name:   name,
		URL:    r.hub.URL + "/api/v1/models/" + model + "/repo?Revision=master&FilePath=" + url.QueryEscape(name),
		Size:   int64(len(r.files[name])),
		SHA256: fakehub.SHA256(r.files[name]),
	}
}

func (r *rig) fetchOK(t *testing.T, name string) Result {
	t.Helper()
	res, err := r.client.Fetch(context.Background(), r.item(name))
	if err != nil {
		t.Fatalf("fetch %s: %v", name, err)
	}
	got, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(r.files[name]) {
		t.Fatalf("%s: cached bytes differ from upstream", name)
	}
	if res.SHA256 != fakehub.SHA256(r.files[name]) {
		t.Fatalf("%s: sha %s", name, res.SHA256)
	}
	return res
}

func TestFetchHappyPathAndCacheHit(t *testing.T) {
	r := newRig(t, 100_000)
	var items []Item
	for _, n := range fakehub.QwenChatFiles {
		items = append(items, r.item(n))
	}
	res, err := r.client.FetchAll(context.Background(), "test", items)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range fakehub.QwenChatFiles {
		b, _ := os.ReadFile(res[i].Path)
		if string(b) != string(r.files[n]) || res[i].Cached {
			t.Fatalf("%s: wrong bytes or cached=%v", n, res[i].Cached)
		}
	}
	before := len(r.hub.Requests(""))
	res, err = r.client.FetchAll(context.Background(), "again", items)
	if err != nil {
		t.Fatal(err)
	}
	if after := len(r.hub.Requests("")); after != before {
		t.Fatalf("re-run made %d requests, want 0", after-before)
	}
	for _, x := range res {
		if !x.Cached {
			t.Fatalf("%s not served from cache", x.Name)
		}
	}
}

func TestFetchDroppedConnectionResumesWithOneRangeRequest(t *testing.T) {
	r := newRig(t, 300_000)
	r.hub.Inject(model, "model.safetensors", fakehub.Fault{Kind: fakehub.Drop, Bytes: 123_456})
	r.fetchOK(t, "model.safetensors")
	reqs := r.hub.Requests("model.safetensors")
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2: %+v", len(reqs), reqs)
	}
	if reqs[0].Range != "" {
		t.Fatalf("first request has Range %q", reqs[0].Range)
	}
	if want := "bytes=123456-299999"; reqs[1].Range != want {
		t.Fatalf("resume Range = %q, want %q", reqs[1].Range, want)
	}
}

func TestFetchResumesPartialFromEarlierRun(t *testing.T) {
	r := newRig(t, 200_000)
	r.client.Attempts = 1
	r.hub.Inject(model, "model.safetensors", fakehub.Fault{Kind: fakehub.Drop, Bytes: 50_000})
	if _, err := r.client.Fetch(context.Background(), r.item("model.safetensors")); err == nil {
		t.Fatal("want error after a drop with one attempt")
	}
	r.fetchOK(t, "model.safetensors")
	reqs := r.hub.Requests("model.safetensors")
	if len(reqs) != 2 || reqs[1].Range != "bytes=50000-199999" {
		t.Fatalf("requests %+v, want second with Range bytes=50000-199999", reqs)
	}
}

func TestFetchRetries5xxAndHonoursRetryAfter(t *testing.T) {
	r := newRig(t, 1000)
	r.hub.Inject(model, "config.json",
		fakehub.Fault{Kind: fakehub.Status, Code: 500},
		fakehub.Fault{Kind: fakehub.Status, Code: 503},
		fakehub.Fault{Kind: fakehub.Status, Code: 429, RetryAfter: "7"})
	r.fetchOK(t, "config.json")
	if n := len(r.hub.Requests("config.json")); n != 4 {
		t.Fatalf("requests = %d, want 4", n)
	}
	if len(r.waits) != 3 || r.waits[2] != 7*time.Second {
		t.Fatalf("waits = %v, want 3 with the last 7s (Retry-After)", r.waits)
	}
	if r.waits[1] < r.waits[0]/2 {
		t.Fatalf("backoff not growing: %v", r.waits)
	}
}

func TestFetchGivesUpAfterAttempts(t *testing.T) {
	r := newRig(t, 1000)
	r.client.Attempts = 3
	for range 3 {
		r.hub.Inject(model, "config.json", fakehub.Fault{Kind: fakehub.Status, Code: 502})
	}
	_, err := r.client.Fetch(context.Background(), r.item("config.json"))
	if err == nil || !strings.Contains(err.Error(), "config.json") || !strings.Contains(err.Error(), "502") {
		t.Fatalf("err = %v, want one naming config.json and 502", err)
	}
}

func TestFetchRetryAfterTooLongFails(t *testing.T) {
	r := newRig(t, 1000)
	r.hub.Inject(model, "config.json", fakehub.Fault{Kind: fakehub.Status, Code: 429, RetryAfter: "86400"})
	_, err := r.client.Fetch(context.Background(), r.item("config.json"))
	if err == nil || !strings.Contains(err.Error(), "retry after") {
		t.Fatalf("err = %v", err)
	}
}

func TestFetchCorruptOnceThenGood(t *testing.T) {
	r := newRig(t, 5000)
	r.hub.Inject(model, "model.safetensors", fakehub.Fault{Kind: fakehub.Corrupt})
	r.fetchOK(t, "model.safetensors")
	if n := len(r.hub.Requests("model.safetensors")); n != 2 {
		t.Fatalf("requests = %d, want 2", n)
	}
}

func TestFetchCorruptAlwaysRefuses(t *testing.T) {
	r := newRig(t, 5000)
	r.hub.Inject(model, "model.safetensors", fakehub.Fault{Kind: fakehub.Corrupt}, fakehub.Fault{Kind: fakehub.Corrupt})
	_, err := r.client.Fetch(context.Background(), r.item("model.safetensors"))
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Name != "model.safetensors" || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Fatalf("err = %v, want sha256 mismatch naming model.safetensors", err)
	}
	if _, ok := r.client.Cache.Lookup(fakehub.SHA256(r.files["model.safetensors"]), -1); ok {
		t.Fatal("bad bytes reached the cache")
	}
	entries, _ := os.ReadDir(r.client.Cache.Dir + "/partial")
	if len(entries) != 0 {
		t.Fatalf("partial left behind: %v", entries)
	}
}

func TestFetchEmptyBody(t *testing.T) {
	r := newRig(t, 1000)
	r.hub.Inject(model, "tokenizer.json", fakehub.Fault{Kind: fakehub.Empty})
	r.fetchOK(t, "tokenizer.json")

	r.client.Attempts = 2
	r.hub.Inject(model, "vocab.json", fakehub.Fault{Kind: fakehub.Empty}, fakehub.Fault{Kind: fakehub.Empty})
	_, err := r.client.Fetch(context.Background(), r.item("vocab.json"))
	if err == nil || !strings.Contains(err.Error(), "empty response body") || !strings.Contains(err.Error(), "vocab.json") {
		t.Fatalf("err = %v, want empty body error naming vocab.json", err)
	}
}

func TestFetch200ToRangeRestartsFromZero(t *testing.T) {
	r := newRig(t, 100_000)
	r.hub.Inject(model, "model.safetensors",
		fakehub.Fault{Kind: fakehub.Drop, Bytes: 40_000},
		fakehub.Fault{Kind: fakehub.IgnoreRange})
	r.fetchOK(t, "model.safetensors")
	reqs := r.hub.Requests("model.safetensors")
	if len(reqs) != 2 || reqs[1].Range == "" || reqs[1].Status != 200 {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestFetchStallIsRetried(t *testing.T) {
	r := newRig(t, 100_000)
	r.client.StallTimeout = 200 * time.Millisecond
	r.hub.Inject(model, "model.safetensors", fakehub.Fault{Kind: fakehub.Stall, Bytes: 10_000, Delay: 5 * time.Second})
	start := time.Now()
	r.fetchOK(t, "model.safetensors")
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("stall not detected early: %s", d)
	}
	reqs := r.hub.Requests("model.safetensors")
	if len(reqs) != 2 || reqs[1].Range != "bytes=10000-99999" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestFetchParallelParts(t *testing.T) {
	r := newRig(t, 1_000_003)
	r.client.PartSize = 300_000
	r.hub.Inject(model, "model.safetensors", fakehub.Fault{Kind: fakehub.Drop, Bytes: 1000})
	r.fetchOK(t, "model.safetensors")
	reqs := r.hub.Requests("model.safetensors")
	ranges := map[string]bool{}
	for _, q := range reqs {
		ranges[q.Range] = true
	}
	for _, want := range []string{"bytes=0-299999", "bytes=300000-599999", "bytes=600000-899999", "bytes=900000-1000002"} {
		if !ranges[want] {
			t.Fatalf("missing part request %s in %+v", want, reqs)
		}
	}
	if len(reqs) != 5 {
		t.Fatalf("requests = %d, want 4 parts + 1 resume", len(reqs))
	}
}

func TestFetchPartsFallBackWhenRangesIgnored(t *testing.T) {
	r := newRig(t, 500_000)
	r.client.PartSize = 200_000
	r.client.Jobs = 1
	r.hub.Inject(model, "model.safetensors", fakehub.Fault{Kind: fakehub.IgnoreRange})
	r.fetchOK(t, "model.safetensors")
}

func TestFetchGitOID(t *testing.T) {
	r := newRig(t, 1000)
	it := r.item("README.md")
	it.SHA256, it.GitOID = "", fakehub.GitOID(r.files["README.md"])
	res, err := r.client.Fetch(context.Background(), it)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != fakehub.SHA256(r.files["README.md"]) {
		t.Fatal("computed sha256 wrong")
	}
	n := len(r.hub.Requests(""))
	if res2, err := r.client.Fetch(context.Background(), it); err != nil || !res2.Cached || len(r.hub.Requests("")) != n {
		t.Fatalf("alias cache miss: %v %+v", err, res2)
	}
	bad := it
	bad.GitOID = strings.Repeat("0", 40)
	r.client.Cache = &Cache{Dir: t.TempDir()}
	if _, err := r.client.Fetch(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "git blob id mismatch") {
		t.Fatalf("err = %v", err)
	}
}

func TestFetchRefusesUnverifiable(t *testing.T) {
	r := newRig(t, 1000)
	it := r.item("README.md")
	it.SHA256 = ""
	if _, err := r.client.Fetch(context.Background(), it); err == nil || !strings.Contains(err.Error(), "no checksum") {
		t.Fatalf("err = %v", err)
	}
}

func TestFetchUnverifiedChecksSizeAndComputesSHA(t *testing.T) {
	r := newRig(t, 1000)
	it := r.item("README.md")
	it.SHA256, it.Unverified = "", true
	res, err := r.client.Fetch(context.Background(), it)
	if err != nil || res.SHA256 != fakehub.SHA256(r.files["README.md"]) {
		t.Fatalf("%+v %v", res, err)
	}
	it.Size++
	r.client.Cache = &Cache{Dir: t.TempDir()}
	if _, err := r.client.Fetch(context.Background(), it); err == nil {
		t.Fatal("size mismatch accepted")
	}
}

func TestFetchPermanentErrors(t *testing.T) {
	r := newRig(t, 1000)
	it := r.item("README.md")
	it.URL = r.hub.URL + "/api/v1/models/qwen/nope/repo?Revision=master&FilePath=README.md"
	_, err := r.client.Fetch(context.Background(), it)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 404 || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v", err)
	}
	if n := len(r.hub.Requests("")); n != 1 {
		t.Fatalf("404 retried: %d requests", n)
	}
}

func TestCacheLookupRejectsDamagedEntry(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	p, sha, err := c.Put(strings.NewReader("hello"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Lookup(sha, 5); !ok {
		t.Fatal("miss")
	}
	_ = os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("HELLO"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Lookup(sha, 5); ok {
		t.Fatal("damaged entry served")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("damaged entry kept")
	}
	if _, _, err := c.Put(strings.NewReader("x"), strings.Repeat("a", 64)); err == nil {
		t.Fatal("Put accepted wrong sha")
	}
}

func TestFetchSizeDisagreesWithServer(t *testing.T) {
	r := newRig(t, 1000)
	it := r.item("LICENSE")
	it.Size += 100
	_, err := r.client.Fetch(context.Background(), it)
	if err == nil || !strings.Contains(err.Error(), "LICENSE") || !strings.Contains(err.Error(), "listing says") {
		t.Fatalf("err = %v", err)
	}
}

func TestFetchSameContentTwice(t *testing.T) {
	r := newRig(t, 1000)
	a, b := r.item("LICENSE"), r.item("LICENSE")
	b.Name = "docs/LICENSE"
	res, err := r.client.FetchAll(context.Background(), "dups", []Item{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Path != res[1].Path || res[1].Name != "docs/LICENSE" {
		t.Fatalf("results %+v", res)
	}
	if n := len(r.hub.Requests("LICENSE")); n != 1 {
		t.Fatalf("identical content downloaded %d times", n)
	}
}

func TestFetchCancelKeepsPartialForNextRun(t *testing.T) {
	r := newRig(t, 200_000)
	r.hub.Inject(model, "model.safetensors", fakehub.Fault{Kind: fakehub.Stall, Bytes: 60_000, Delay: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(r.hub.Requests("model.safetensors")) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	if _, err := r.client.Fetch(ctx, r.item("model.safetensors")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	r.fetchOK(t, "model.safetensors")
	reqs := r.hub.Requests("model.safetensors")
	if len(reqs) != 2 || reqs[1].Range != "bytes=60000-199999" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestMain(m *testing.M) {
	progress.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"junk":                          0,
		"Thu, 01 Jan 2026 00:00:10 GMT": 10 * time.Second,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", h, got, want)
		}
	}
}

func FuzzResponseHeaders(f *testing.F) {
	f.Add("bytes 100-199/200", "120", []byte(`{"Code":404,"Message":"not found"}`))
	f.Add("bytes */5", "Thu, 01 Jan 2026 00:00:10 GMT", []byte("plain"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, contentRange, retry string, body []byte) {
		if n, ok := contentRangeStart(contentRange); ok && n < 0 {
			t.Fatalf("negative start %d", n)
		}
		if n, ok := contentRangeTotal(contentRange); ok && n < 0 {
			t.Fatalf("negative total %d", n)
		}
		if d := retryAfter(retry, now); d < 0 {
			t.Fatalf("negative wait %s", d)
		}
		if msg := ErrorMessage(body); len(msg) > len(body) {
			t.Fatalf("message longer than body")
		}
	})
}
