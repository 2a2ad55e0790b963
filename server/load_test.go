package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/runtime"
)

// loadConfig shapes a load run.
type loadConfig struct {
	clients   int
	duration  time.Duration
	maxTokens int
}

// loadResult summarizes a load run.
type loadResult struct {
	requests         int
	byStatus         map[int]int
	disconnected     int
	latencies        []time.Duration // complete responses
	firstToken       []time.Duration // streams
	completionTokens int
	elapsed          time.Duration
	peakRSS, endRSS  int64
	records          uint64
}

func (r *loadResult) String() string {
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	return fmt.Sprintf("requests=%d statuses=%v disconnected_early=%d latency_p50=%v p99=%v ttft_p50=%v p99=%v "+
		"completion_tokens=%d tokens_per_s=%.1f req_per_s=%.2f peak_rss_mib=%.1f end_rss_mib=%.1f audit_records=%d",
		r.requests, r.byStatus, r.disconnected, pct(r.latencies, .5).Round(time.Millisecond), pct(r.latencies, .99).Round(time.Millisecond),
		pct(r.firstToken, .5).Round(time.Millisecond), pct(r.firstToken, .99).Round(time.Millisecond),
		r.completionTokens, float64(r.completionTokens)/r.elapsed.Seconds(), float64(r.requests)/r.elapsed.Seconds(),
		float64(r.peakRSS)/(1<<20), float64(r.endRSS)/(1<<20), r.records)
}

// rssBytes reads a process's resident set size from /proc (0 elsewhere).
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// runLoad drives a child server process with cfg.clients concurrent
// clients, mixing non-streaming and streaming requests, a fifth of the
// streams hanging up after their first token. Each request carries a
// unique tag in its prompt so the audit log can be checked for exactly
// one record per request.
func runLoad(t *testing.T, c *child, cfg loadConfig) *loadResult {
	res := &loadResult{byStatus: map[int]int{}}
	var mu sync.Mutex
	tags := map[string]bool{}
	stopRSS := make(chan struct{})
	var rssWG sync.WaitGroup
	rssWG.Add(1)
	go func() {
		defer rssWG.Done()
		for {
			if r := rssBytes(c.cmd.Process.Pid); r > 0 {
				mu.Lock()
				res.peakRSS = max(res.peakRSS, r)
				mu.Unlock()
			}
			select {
			case <-stopRSS:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	transport := &http.Transport{MaxIdleConnsPerHost: cfg.clients}
	client := &http.Client{Transport: transport}
	start := time.Now()
	deadline := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for i := range cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for n := 0; time.Now().Before(deadline); n++ {
				tag := fmt.Sprintf("load-%d-%d", i, n)
				stream := rng.IntN(2) == 0
				hangUp := stream && rng.IntN(5) == 0
				status, tokens, lat, ttft, early, err := loadRequest(client, c.url, tag, stream, hangUp, cfg.maxTokens)
				mu.Lock()
				tags[tag] = true
				res.requests++
				if err != nil {
					mu.Unlock()
					t.Errorf("request %s: %v", tag, err)
					return
				}
				res.byStatus[status]++
				if early {
					res.disconnected++
				} else if status == 200 {
					res.latencies = append(res.latencies, lat)
					res.completionTokens += tokens
				}
				if ttft > 0 {
					res.firstToken = append(res.firstToken, ttft)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	time.Sleep(200 * time.Millisecond) // let cancelled generations be recorded
	res.endRSS = rssBytes(c.cmd.Process.Pid)
	close(stopRSS)
	rssWG.Wait()
	transport.CloseIdleConnections()

	if err := c.cmd.Process.Signal(sigterm); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(t); err != nil {
		t.Fatalf("server exit: %v", err)
	}
	files, err := audit.Files(filepath.Join(c.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(files, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("audit chain after load: %v", err)
	}
	res.records = rep.Records
	seen := map[string]int{}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var r audit.Record
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatal(err)
			}
			if r.Prompt == nil {
				t.Fatalf("record without prompt: %s", line)
			}
			i := strings.Index(*r.Prompt, "load-")
			if i < 0 {
				t.Fatalf("record without a load tag: %s", line)
			}
			tag := strings.Fields((*r.Prompt)[i:])[0]
			seen[tag]++
		}
	}
	for tag := range tags {
		if seen[tag] != 1 {
			t.Errorf("request %s has %d audit records", tag, seen[tag])
		}
	}
	if len(seen) != len(tags) {
		t.Errorf("%d tagged records for %d requests", len(seen), len(tags))
	}
	for status := range res.byStatus {
		if status >= 500 {
			t.Errorf("server errors: %v", res.byStatus)
		}
	}
	return res
}

// loadRequest sends one chat request and reads the whole answer (or hangs
// up after the first token).
func loadRequest(client *http.Client, url, tag string, stream, hangUp bool, maxTokens int) (status, tokens int, latency, ttft time.Duration, early bool, err error) {
	body, _ := json.Marshal(map[string]any{
		"messages":   []map[string]any{{"role": "user", "content": tag + " tell me something"}},
		"max_tokens": maxTokens, "stream": stream, "stream_options": streamOpts(stream),
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", bytes.NewReader(body))
	req.SetBasicAuth(testUser, testPass)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, 0, 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !stream {
		var c chatCompletion
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return resp.StatusCode, 0, 0, 0, false, err
		}
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(b, &c); err != nil {
				return resp.StatusCode, 0, 0, 0, false, fmt.Errorf("decode: %w", err)
			}
		}
		return resp.StatusCode, c.Usage.CompletionTokens, time.Since(start), 0, false, nil
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return 200, tokens, time.Since(start), ttft, false, nil
		}
		var ch chatChunk
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			return 200, 0, 0, 0, false, fmt.Errorf("chunk %q: %w", data, err)
		}
		if ch.Usage != nil {
			tokens = ch.Usage.CompletionTokens
		}
		if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" && ttft == 0 {
			ttft = time.Since(start)
			if hangUp {
				cancel()
				return 200, 0, 0, ttft, true, nil
			}
		}
	}
	return 200, tokens, 0, ttft, false, fmt.Errorf("stream ended without [DONE]: %v", sc.Err())
}

func streamOpts(stream bool) any {
	if !stream {
		return nil
	}
	return map[string]any{"include_usage": true}
}

// TestLoadShort is the bounded load check of the normal suite.
func TestLoadShort(t *testing.T) {
	c := startChild(t, 0)
	res := runLoad(t, c, loadConfig{clients: 8, duration: 3 * time.Second, maxTokens: 8})
	t.Log(res)
	if res.requests < 8 {
		t.Fatalf("only %d requests", res.requests)
	}
}

// TestLoad is the full load run: AIRLOCK_LOADTEST=1 go test -run TestLoad$
// -v ./server (AIRLOCK_LOADTEST_CLIENTS, _DURATION and _MAX_TOKENS adjust
// it; defaults 32 clients, 60 s, 32 tokens).
func TestLoad(t *testing.T) {
	if os.Getenv("AIRLOCK_LOADTEST") != "1" {
		t.Skip("set AIRLOCK_LOADTEST=1 for the full load test")
	}
	cfg := loadConfig{clients: 32, duration: time.Minute, maxTokens: 32}
	if v, err := strconv.Atoi(os.Getenv("AIRLOCK_LOADTEST_CLIENTS")); err == nil {
		cfg.clients = v
	}
	if v, err := time.ParseDuration(os.Getenv("AIRLOCK_LOADTEST_DURATION")); err == nil {
		cfg.duration = v
	}
	if v, err := strconv.Atoi(os.Getenv("AIRLOCK_LOADTEST_MAX_TOKENS")); err == nil {
		cfg.maxTokens = v
	}
	base := engineBaseline(t, 2, cfg.maxTokens, 15*time.Second)
	c := startChild(t, 0, "AIRLOCK_TEST_CONCURRENCY=2", "AIRLOCK_TEST_QUEUE=64")
	res := runLoad(t, c, cfg)
	t.Log(res)
	served := float64(res.completionTokens) / res.elapsed.Seconds()
	t.Logf("baseline (engine called directly, 2 workers, same prompts): %.1f tokens/s; served/baseline = %.2f", base, served/base)
	if res.peakRSS > 1<<30 {
		t.Errorf("peak RSS %d MiB", res.peakRSS>>20)
	}
}

// engineBaseline measures completion tokens/s of the tiny model called
// directly (no HTTP, auth or audit) by workers goroutines for d, with the
// load test's prompt shape and max_tokens.
func engineBaseline(t *testing.T, workers, maxTokens int, d time.Duration) float64 {
	m := loadTiny(t)
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	tokens := 0
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline); n++ {
				prompt, _ := m.RenderChat([]runtime.Message{{Role: "user", Content: fmt.Sprintf("load-%d-%d tell me something", w, n)}}, true)
				res, err := m.Generate(context.Background(), m.Encode(prompt), runtime.SampleParams{Temperature: 1, TopP: 1, MaxTokens: maxTokens, Seed: uint64(n)}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				tokens += res.CompletionTokens
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return float64(tokens) / time.Since(start).Seconds()
}
