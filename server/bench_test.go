package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/airlock-dev/airlock/runtime"
)

// BenchmarkEngineDirect is the baseline for BenchmarkChat*: the fake
// engine's 5-token generation with no server around it.
func BenchmarkEngineDirect(b *testing.B) {
	eng := &fakeEngine{}
	ids := eng.Encode("<user>hello\n<assistant>")
	for b.Loop() {
		if _, err := eng.Generate(context.Background(), ids, runtime.SampleParams{MaxTokens: 5, Seed: 7}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func benchChat(b *testing.B, stream, parallel bool) {
	ts := startServer(b, &fakeEngine{}, func(c *Config) { c.Concurrency, c.Queue = 8, 64 })
	body, _ := json.Marshal(chatBody(stream, nil))
	one := func(client *http.Client) {
		req, _ := http.NewRequest("POST", ts.url+"/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.key)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	if parallel {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one(client)
			}
		})
		return
	}
	for b.Loop() {
		one(client)
	}
}

// BenchmarkChat measures one authenticated, audited (fsynced) chat
// completion over loopback HTTP with the fake engine: the serving layer's
// cost per request.
func BenchmarkChat(b *testing.B) { benchChat(b, false, false) }

// BenchmarkChatStream is BenchmarkChat with SSE streaming.
func BenchmarkChatStream(b *testing.B) { benchChat(b, true, false) }

// BenchmarkChatParallel runs concurrent clients, so audit records share
// fsyncs (group commit).
func BenchmarkChatParallel(b *testing.B) { benchChat(b, false, true) }
