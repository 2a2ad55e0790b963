package server

import (
	"encoding/json"
	"testing"
)

// FuzzParseChat: arbitrary request bodies never panic; an accepted request
// has messages, sane sampling parameters and max_tokens within the limit.
func FuzzParseChat(f *testing.F) {
	f.Add([]byte(`{"model":"fake","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}`))
	f.Add([]byte(`{"messages":[{"role":"developer","content":[{"type":"text","text":"x"}]}],"stop":["a","b"],"seed":-1,"temperature":2,"top_p":0.5}`))
	f.Add([]byte(`{"messages":[{"role":"assistant","content":null}],"n":1,"tools":[],"response_format":{"type":"text"}}`))
	s := &Server{cfg: Config{Engine: &fakeEngine{}}}
	s.cfg.applyDefaults()
	f.Fuzz(func(t *testing.T, body []byte) {
		var req chatRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		p, bad := s.parseChat(&req)
		if bad != nil {
			if bad.msg == "" {
				t.Fatal("empty error message")
			}
			return
		}
		sp := p.params
		if len(p.messages) == 0 || sp.MaxTokens < 1 || sp.MaxTokens > s.cfg.Limits.MaxTokens ||
			sp.Temperature < 0 || sp.Temperature > 2 || sp.TopP <= 0 || sp.TopP > 1 || len(sp.Stop) > 4 {
			t.Fatalf("accepted %s as %+v", body, p)
		}
	})
}
