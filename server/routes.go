package server

import (
	"net/http"
	"sort"

	"github.com/airlock-dev/airlock/infer"
	"github.com/airlock-dev/airlock/webui"
)

// routes builds the server's mux: the OpenAI API, the chat page
// (webui) at / and /assets/, POST /api/infer, health, readiness and
// metrics. Every route but /healthz goes through protect (auth, audit,
// metrics).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /readyz", s.protect("/readyz", http.HandlerFunc(s.handleReady)))
	mux.Handle("GET /metrics", s.protect("/metrics", s.metrics.handler()))
	mux.Handle("/v1/chat/completions", s.protect("/v1/chat/completions", http.HandlerFunc(s.handleChat)))
	mux.Handle("GET /v1/models", s.protect("/v1/models", http.HandlerFunc(s.handleModels)))
	mux.Handle("GET /v1/models/{id}", s.protect("/v1/models/{id}", http.HandlerFunc(s.handleModel)))
	page := webui.Handler()
	mux.Handle("GET /{$}", s.protect("/", page))
	mux.Handle("GET /index.html", s.protect("/", page))
	mux.Handle("GET "+webui.AssetPrefix, s.protect(webui.AssetPrefix, page))
	mux.Handle("/api/infer", s.protect("/api/infer", infer.New(s.engine, infer.Options{
		MaxBodyBytes: s.cfg.Limits.MaxBodyBytes, MaxChatTokens: s.cfg.Limits.MaxTokens,
		MaxPromptTokens: s.cfg.Limits.MaxPromptTokens,
		ModelName:       s.cfg.Model.Name, ManifestSHA256: s.cfg.Model.ManifestSHA256,
	})))

	patterns := make([]string, 0, len(s.cfg.Routes))
	for p := range s.cfg.Routes {
		patterns = append(patterns, p)
	}
	sort.Strings(patterns)
	hasRoot := false
	for _, p := range patterns {
		mux.Handle(p, s.protect(p, s.cfg.Routes[p](s.engine)))
		if p == "/" || p == "GET /" {
			hasRoot = true
		}
	}
	if !hasRoot {
		mux.Handle("/", s.protect("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, http.StatusNotFound, errInvalidRequest, "not_found", "", "no route for "+r.Method+" "+r.URL.Path)
		})))
	}
	return mux
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "model": s.cfg.Model.Name,
		"queue_depth": s.engine.QueueDepth(), "running": s.engine.Running()})
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) modelObject() modelObject {
	return modelObject{ID: s.cfg.Model.Name, Object: "model", Created: s.cfg.Model.Created.Unix(), OwnedBy: "airlock"}
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelObject{s.modelObject()}})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != s.cfg.Model.Name {
		writeError(w, r, http.StatusNotFound, errInvalidRequest, "model_not_found", "model",
			"the model "+r.PathValue("id")+" does not exist; this server serves "+s.cfg.Model.Name)
		return
	}
	writeJSON(w, http.StatusOK, s.modelObject())
}
