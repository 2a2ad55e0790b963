// Package fakehub is an in-process fake of the ModelScope and Hugging Face
// hub HTTP APIs for tests. It answers on 127.0.0.1 with the JSON shapes,
// headers and status codes of the real hubs, and can inject the failures
// real networks produce: dropped connections, 5xx and 429 answers, bytes
// that do not match the listing, empty bodies, ignored Range headers and
// stalls.
package fakehub

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// File is one file of a fake model.
type File struct {
	Path string
	Data []byte
	// Revision is the commit that last changed the file.
	Revision string
	// LFS marks files stored in LFS (ModelScope IsLFS, HF lfs block).
	LFS bool
}

// Model is a fake model repository.
type Model struct {
	ID       string // "owner/name"
	Branches []string
	Tags     []string
	Commit   string // head commit id (HF "sha")
	Files    []File
	// Token, if set, makes the model private: requests must carry it
	// (ModelScope cookie m_session_id, HF Authorization: Bearer).
	Token string
}

// FaultKind is a failure the hub injects into one download response.
type FaultKind int

// Faults a download can suffer.
const (
	// Status answers with Code (and Retry-After if set) instead of the file.
	Status FaultKind = iota + 1
	// Drop sends the headers and the first Bytes bytes, then closes the
	// connection.
	Drop
	// Corrupt serves the file with one byte flipped.
	Corrupt
	// Empty answers 200 with an empty body (a known hub failure mode).
	Empty
	// IgnoreRange answers a Range request with 200 and the whole file.
	IgnoreRange
	// Stall sends Bytes bytes, then waits Delay before closing.
	Stall
)

// Fault is one injected failure.
type Fault struct {
	Kind       FaultKind
	Code       int
	RetryAfter string
	Bytes      int64
	Delay      time.Duration
}

// Request records one request the hub received.
type Request struct {
	Method, Path string
	Query        url.Values
	Range        string
	UserAgent    string
	HasToken     bool
	File         string // file path for download requests
	Status       int
}

// Hub is a running fake hub.
type Hub struct {
	// URL is the endpoint, http://127.0.0.1:PORT.
	URL    string
	server *httptest.Server

	mu       sync.Mutex
	models   map[string]*Model
	faults   map[string][]Fault // by model ID + "/" + file path
	requests []Request
}

// New starts a fake hub on a loopback port; Close stops it.
func New() *Hub {
	h := &Hub{models: map[string]*Model{}, faults: map[string][]Fault{}}
	h.server = httptest.NewServer(http.HandlerFunc(h.serve))
	h.URL = h.server.URL
	return h
}

// Close stops the server.
func (h *Hub) Close() { h.server.Close() }

// AddModel publishes a model.
func (h *Hub) AddModel(m Model) {
	h.mu.Lock()
	defer h.mu.Unlock()
	mm := m
	h.models[m.ID] = &mm
}

// Inject queues faults for the next download requests of a file, one fault
// per request, in order; later requests succeed. For ModelScope API calls
// use "@revisions" or "@repo/files" as the file (Status faults only).
func (h *Hub) Inject(modelID, file string, faults ...Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := modelID + "/" + file
	h.faults[k] = append(h.faults[k], faults...)
}

// Requests returns the recorded download requests of one file ("" = all
// requests of any kind).
func (h *Hub) Requests(file string) []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Request
	for _, r := range h.requests {
		if file == "" || r.File == file {
			out = append(out, r)
		}
	}
	return out
}

// SHA256 returns the hex sha256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// GitOID returns the git blob id of b.
func GitOID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// QwenChatFiles are the files ModelScope lists for qwen/Qwen1.5-0.5B-Chat.
var QwenChatFiles = []string{
	"config.json", "configuration.json", "generation_config.json", "model.safetensors",
	"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "LICENSE", "README.md",
}

// QwenChat returns a fake qwen/Qwen1.5-0.5B-Chat with the real file list
// (and a .gitattributes, which clients must skip). Contents are small and
// deterministic; model.safetensors is weightsSize bytes.
func QwenChat(weightsSize int) Model {
	m := Model{
		ID:       "qwen/Qwen1.5-0.5B-Chat",
		Branches: []string{"master"},
		Tags:     []string{"v1.0.0"},
		Commit:   "4e2b4b1c1e5e7f3a5d6c8b9a0f1e2d3c4b5a6978",
	}
	for i, name := range append([]string{".gitattributes"}, QwenChatFiles...) {
		var data []byte
		switch name {
		case "model.safetensors":
			data = pattern(weightsSize, 7)
		case "config.json":
			data = []byte(`{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_size":1024}` + "\n")
		default:
			data = []byte(fmt.Sprintf("%s of the fake Qwen1.5-0.5B-Chat\n%s", name, pattern(200+i*37, byte(i))))
		}
		m.Files = append(m.Files, File{
			Path:     name,
			Data:     data,
			Revision: fmt.Sprintf("%040x", 0xc0ffee+i),
			LFS:      name == "model.safetensors",
		})
	}
	return m
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func (h *Hub) record(r *http.Request, file string, status int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, cookieErr := r.Cookie("m_session_id")
	h.requests = append(h.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Range: r.Header.Get("Range"),
		UserAgent: r.UserAgent(), HasToken: cookieErr == nil || r.Header.Get("Authorization") != "",
		File: file, Status: status,
	})
}

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.record(r, "", http.StatusMethodNotAllowed)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/v1/models/"):
		h.serveModelScope(w, r, strings.TrimPrefix(p, "/api/v1/models/"))
	case strings.HasPrefix(p, "/api/models/"):
		h.serveHFInfo(w, r, strings.TrimPrefix(p, "/api/models/"))
	case strings.HasPrefix(p, "/cdn-lfs/"):
		h.serveHFCDN(w, r, strings.TrimPrefix(p, "/cdn-lfs/"))
	default:
		h.serveHFResolve(w, r, strings.TrimPrefix(p, "/"))
	}
}

func (h *Hub) lookup(id string) (*Model, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.models[id]
	return m, ok
}

func (h *Hub) takeFault(id, file string) (Fault, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := id + "/" + file
	q := h.faults[k]
	if len(q) == 0 {
		return Fault{}, false
	}
	h.faults[k] = q[1:]
	return q[0], true
}

// requestID mimics the hub's per-request id.
func requestID() string {
	return fmt.Sprintf("%x", time.Now().UnixNano())
}

// envelope writes a ModelScope JSON answer.
func envelope(w http.ResponseWriter, status, code int, data any, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"Code": code, "Data": data, "Message": msg, "RequestId": requestID(), "Success": code == 200,
	})
}

func (m *Model) hasRevision(rev string) bool {
	for _, b := range append(append([]string{}, m.Branches...), m.Tags...) {
		if b == rev {
			return true
		}
	}
	return rev == m.Commit
}

func (h *Hub) serveModelScope(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 3 {
		h.record(r, "", 404)
		envelope(w, http.StatusNotFound, 10010205001, nil, "Not Found")
		return
	}
	id, action := parts[0]+"/"+parts[1], parts[2]
	m, ok := h.lookup(id)
	if !ok {
		h.record(r, "", 404)
		envelope(w, http.StatusNotFound, 10010205001, nil, fmt.Sprintf("model %s not found", id))
		return
	}
	if m.Token != "" {
		c, err := r.Cookie("m_session_id")
		switch {
		case err != nil:
			h.record(r, r.URL.Query().Get("FilePath"), 401)
			envelope(w, http.StatusUnauthorized, 10010205004, nil, "Unauthorized: login required to access private model")
			return
		case c.Value != m.Token:
			h.record(r, r.URL.Query().Get("FilePath"), 403)
			envelope(w, http.StatusForbidden, 10010205003, nil, "Forbidden: no permission for this model")
			return
		}
	}
	q := r.URL.Query()
	// API faults are queued under "@" + the action ("@revisions", "@repo/files").
	if action != "repo" {
		if fault, ok := h.takeFault(id, "@"+action); ok && fault.Kind == Status {
			h.record(r, "", fault.Code)
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			envelope(w, fault.Code, fault.Code, nil, http.StatusText(fault.Code))
			return
		}
	}
	switch action {
	case "revisions":
		h.record(r, "", 200)
		type rev struct {
			Revision  string
			CreatedAt int64
		}
		var br, tg []rev
		for i, b := range m.Branches {
			br = append(br, rev{b, 1700000000 + int64(i)})
		}
		for i, t := range m.Tags {
			tg = append(tg, rev{t, 1700001000 + int64(i)})
		}
		envelope(w, 200, 200, map[string]any{"RevisionMap": map[string]any{"Branches": br, "Tags": tg}}, "success")
	case "repo/files":
		rv := q.Get("Revision")
		if !m.hasRevision(rv) {
			h.record(r, "", 404)
			envelope(w, http.StatusNotFound, 10010205002, nil, fmt.Sprintf("revision %s not found", rv))
			return
		}
		h.record(r, "", 200)
		var files []map[string]any
		dirs := map[string]bool{}
		for _, f := range m.Files {
			if i := strings.LastIndex(f.Path, "/"); i > 0 && !dirs[f.Path[:i]] {
				dirs[f.Path[:i]] = true
				files = append(files, map[string]any{"Name": f.Path[:i], "Path": f.Path[:i], "Type": "tree", "Size": 0, "Sha256": "", "Revision": f.Revision, "IsLFS": false})
			}
			name := f.Path[strings.LastIndex(f.Path, "/")+1:]
			files = append(files, map[string]any{
				"Name": name, "Path": f.Path, "Type": "blob", "Size": len(f.Data),
				"Sha256": SHA256(f.Data), "Revision": f.Revision, "IsLFS": f.LFS,
				"Mode": "33188", "CommitMessage": "upload", "CommittedDate": 1700000000,
			})
		}
		envelope(w, 200, 200, map[string]any{"Files": files, "LatestCommitter": map[string]any{"Name": "qwen"}}, "success")
	case "repo":
		rv, fp := q.Get("Revision"), q.Get("FilePath")
		if !m.hasRevision(rv) {
			h.record(r, fp, 404)
			envelope(w, http.StatusNotFound, 10010205002, nil, fmt.Sprintf("revision %s not found", rv))
			return
		}
		for _, f := range m.Files {
			if f.Path == fp {
				h.serveFile(w, r, m.ID, f, f.Path)
				return
			}
		}
		h.record(r, fp, 404)
		envelope(w, http.StatusNotFound, 10010205001, nil, fmt.Sprintf("file %s not found", fp))
	default:
		h.record(r, "", 404)
		envelope(w, http.StatusNotFound, 10010205001, nil, "Not Found")
	}
}

// serveFile serves a file's bytes, honouring Range, after applying the
// next queued fault.
func (h *Hub) serveFile(w http.ResponseWriter, r *http.Request, id string, f File, etag string) {
	data := f.Data
	fault, faulty := h.takeFault(id, f.Path)
	status := 200
	if r.Header.Get("Range") != "" {
		status = 206
	}
	if faulty {
		switch fault.Kind {
		case Status:
			h.record(r, f.Path, fault.Code)
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			http.Error(w, http.StatusText(fault.Code), fault.Code)
			return
		case Empty:
			h.record(r, f.Path, 200)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(200)
			return
		case Corrupt:
			data = bytes.Clone(data)
			data[len(data)/2] ^= 0xff
		case IgnoreRange:
			h.record(r, f.Path, 200)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(200)
			_, _ = w.Write(data)
			return
		case Drop, Stall:
			h.record(r, f.Path, status)
			start, end := 0, len(data)-1
			if rg := r.Header.Get("Range"); rg != "" {
				start, end = parseRange(rg, len(data))
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(data)))
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(end-start+1))
			w.Header().Set("Accept-Ranges", "bytes")
			w.WriteHeader(status)
			n := min(int(fault.Bytes), end-start+1)
			_, _ = w.Write(data[start : start+n])
			w.(http.Flusher).Flush()
			if fault.Kind == Stall {
				select {
				case <-time.After(fault.Delay):
				case <-r.Context().Done():
				}
			}
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
				}
			}
			return
		}
	}
	h.record(r, f.Path, status)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+etag+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// parseRange parses "bytes=A-" or "bytes=A-B" (tests only send those).
func parseRange(h string, size int) (int, int) {
	spec := strings.TrimPrefix(h, "bytes=")
	a, b, _ := strings.Cut(spec, "-")
	start, _ := strconv.Atoi(a)
	end := size - 1
	if b != "" {
		if e, err := strconv.Atoi(b); err == nil && e < end {
			end = e
		}
	}
	return start, end
}

func hfError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", msg)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (h *Hub) hfAuth(w http.ResponseWriter, r *http.Request, m *Model, file string) bool {
	if m.Token == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		h.record(r, file, 401)
		hfError(w, http.StatusUnauthorized, "GatedRepo", "Access to this model is restricted. You must be authenticated to access it.")
		return false
	}
	if auth != "Bearer "+m.Token {
		h.record(r, file, 403)
		hfError(w, http.StatusForbidden, "GatedRepo", "Access to this model is restricted and you are not in the authorized list.")
		return false
	}
	return true
}

// serveHFInfo answers GET /api/models/{owner}/{name}/revision/{rev}.
func (h *Hub) serveHFInfo(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) == 3 && parts[2] == "refs" {
		h.serveHFRefs(w, r, parts[0]+"/"+parts[1])
		return
	}
	if len(parts) != 4 || parts[2] != "revision" {
		h.record(r, "", 404)
		hfError(w, 404, "RepoNotFound", "Repository not found")
		return
	}
	id := parts[0] + "/" + parts[1]
	rev, _ := url.PathUnescape(parts[3])
	m, ok := h.lookup(id)
	if !ok {
		h.record(r, "", 401) // the real hub hides existence: 401 RepoNotFound
		hfError(w, 401, "RepoNotFound", "Repository Not Found for url: "+r.URL.String()+".")
		return
	}
	if !h.hfAuth(w, r, m, "") {
		return
	}
	if !m.hasRevision(rev) && rev != "main" {
		h.record(r, "", 404)
		hfError(w, 404, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	h.record(r, "", 200)
	var sib []map[string]any
	for _, f := range m.Files {
		s := map[string]any{"rfilename": f.Path}
		if r.URL.Query().Get("blobs") == "true" {
			s["blobId"] = GitOID(f.Data)
			s["size"] = len(f.Data)
			if f.LFS {
				s["lfs"] = map[string]any{"sha256": SHA256(f.Data), "size": len(f.Data), "pointerSize": 134}
			}
		}
		sib = append(sib, s)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"_id": "65b0c0ffee", "id": id, "modelId": id, "sha": m.Commit, "private": m.Token != "",
		"gated": false, "disabled": false, "siblings": sib, "lastModified": "2024-02-05T00:00:00.000Z",
	})
}

// serveHFRefs answers GET /api/models/{owner}/{name}/refs.
func (h *Hub) serveHFRefs(w http.ResponseWriter, r *http.Request, id string) {
	m, ok := h.lookup(id)
	if !ok {
		h.record(r, "", 401)
		hfError(w, 401, "RepoNotFound", "Repository not found")
		return
	}
	if !h.hfAuth(w, r, m, "") {
		return
	}
	h.record(r, "", 200)
	type ref struct {
		Name         string `json:"name"`
		Ref          string `json:"ref"`
		TargetCommit string `json:"targetCommit"`
	}
	var br, tg []ref
	for _, b := range m.Branches {
		br = append(br, ref{b, "refs/heads/" + b, m.Commit})
	}
	for _, t := range m.Tags {
		tg = append(tg, ref{t, "refs/tags/" + t, m.Commit})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"branches": br, "tags": tg, "converts": []any{}})
}

// serveHFResolve answers GET /{owner}/{name}/resolve/{rev}/{path}.
func (h *Hub) serveHFResolve(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 5)
	if len(parts) != 5 || parts[2] != "resolve" {
		h.record(r, "", 404)
		hfError(w, 404, "EntryNotFound", "Not Found")
		return
	}
	id, rev, fp := parts[0]+"/"+parts[1], parts[3], parts[4]
	m, ok := h.lookup(id)
	if !ok {
		h.record(r, fp, 401)
		hfError(w, 401, "RepoNotFound", "Repository not found")
		return
	}
	if !h.hfAuth(w, r, m, fp) {
		return
	}
	if !m.hasRevision(rev) && rev != "main" {
		h.record(r, fp, 404)
		hfError(w, 404, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	for _, f := range m.Files {
		if f.Path != fp {
			continue
		}
		w.Header().Set("X-Repo-Commit", m.Commit)
		if f.LFS {
			h.record(r, fp, http.StatusFound)
			w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.Data)))
			w.Header().Set("X-Linked-Etag", `"`+SHA256(f.Data)+`"`)
			http.Redirect(w, r, "/cdn-lfs/"+id+"/"+SHA256(f.Data)+"?file="+url.QueryEscape(fp), http.StatusFound)
			return
		}
		h.serveFile(w, r, id, f, GitOID(f.Data))
		return
	}
	h.record(r, fp, 404)
	hfError(w, 404, "EntryNotFound", fp+" does not exist on \""+rev+"\"")
}

// serveHFCDN serves LFS content by sha256, as the CDN behind /resolve does.
func (h *Hub) serveHFCDN(w http.ResponseWriter, r *http.Request, rest string) {
	i := strings.LastIndex(rest, "/")
	if i < 0 {
		h.record(r, "", 404)
		http.NotFound(w, r)
		return
	}
	id, sum := rest[:i], rest[i+1:]
	m, ok := h.lookup(id)
	if ok {
		for _, f := range m.Files {
			if f.LFS && SHA256(f.Data) == sum {
				h.serveFile(w, r, id, f, sum)
				return
			}
		}
	}
	h.record(r, "", 404)
	http.NotFound(w, r)
}
