// Package hf is the bundle source for models on a Hugging Face–compatible
// hub (huggingface.co or a mirror). It asks the hub for the revision's
// file list with blob metadata, downloads each file from /resolve/ at the
// resolved commit, and checks every file against its LFS sha256 or, for
// small files the hub lists only by git blob id, against that id while
// computing the sha256 itself.
package hf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/internal/version"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
	"github.com/airlock-dev/airlock/source/fetch"
	"github.com/airlock-dev/airlock/source/local"
)

// DefaultEndpoint is the public Hugging Face hub.
const DefaultEndpoint = "https://huggingface.co"

// DefaultRevision is the branch used when a spec names none.
const DefaultRevision = "main"

// Schemes that select this source: hf://owner/name[@rev] and
// huggingface://owner/name[@rev].
var Schemes = []string{"hf://", "huggingface://"}

// Source is a model on a Hugging Face–compatible hub.
type Source struct {
	// Endpoint is the hub base URL; EndpointFromEnv or DefaultEndpoint.
	Endpoint string
	// Token is sent as "Authorization: Bearer"; never logged.
	Token string
	// Model is "owner/name".
	Model string
	// Revision is a branch, tag or commit; DefaultRevision if empty.
	Revision string
	// Include and Exclude select files (see manifests.MatchGlobs).
	// .gitattributes and .gitignore are always skipped.
	Include, Exclude []string
	// Fetch downloads into the cache; required.
	Fetch *fetch.Client
	// TrustUnlisted downloads files listed with neither an LFS sha256 nor
	// a git blob id, checking only their size (trust on first use).
	TrustUnlisted bool
	// BeforeDownload, if set, sees the listing before any download.
	BeforeDownload func(*source.Snapshot) error
}

var modelIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)

// IsSpec reports whether spec names this source.
func IsSpec(spec string) bool {
	for _, s := range Schemes {
		if strings.HasPrefix(spec, s) {
			return true
		}
	}
	return false
}

// ParseSpec splits "hf://owner/name[@revision]".
func ParseSpec(spec string) (model, revision string, err error) {
	rest := ""
	for _, s := range Schemes {
		if r, ok := strings.CutPrefix(spec, s); ok {
			rest = r
		}
	}
	if rest == "" {
		return "", "", fmt.Errorf("hugging face spec %q: want hf://owner/name[@revision]", spec)
	}
	model, revision, _ = strings.Cut(rest, "@")
	if !modelIDPattern.MatchString(model) || strings.Contains(model, "..") {
		return "", "", fmt.Errorf("hugging face spec %q: model must be owner/name", spec)
	}
	if strings.Contains(rest, "@") && revision == "" {
		return "", "", fmt.Errorf("hugging face spec %q: empty revision after @", spec)
	}
	return model, revision, nil
}

// EndpointFromEnv returns HF_ENDPOINT or DefaultEndpoint.
func EndpointFromEnv() string {
	if e := strings.TrimSpace(os.Getenv("HF_ENDPOINT")); e != "" {
		return e
	}
	return DefaultEndpoint
}

// TokenFromEnv returns HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN).
func TokenFromEnv() string {
	if t := strings.TrimSpace(os.Getenv("HF_TOKEN")); t != "" {
		return t
	}
	return strings.TrimSpace(os.Getenv("HUGGING_FACE_HUB_TOKEN"))
}

// APIError is a failed hub answer.
type APIError struct {
	Op        string
	Status    int
	ErrorCode string // X-Error-Code
	Message   string
}

// Error names the call, status, hub error code and message.
func (e *APIError) Error() string {
	s := fmt.Sprintf("hugging face %s: HTTP %d", e.Op, e.Status)
	if e.ErrorCode != "" {
		s += " " + e.ErrorCode
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		s += " (private, gated or missing model? set HF_TOKEN or --token-file with a token that may read it)"
	}
	return s
}

type sibling struct {
	RFilename string `json:"rfilename"`
	BlobID    string `json:"blobId"`
	Size      *int64 `json:"size"`
	LFS       *struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
}

type modelInfo struct {
	ID       string    `json:"id"`
	SHA      string    `json:"sha"`
	Siblings []sibling `json:"siblings"`
}

func (s *Source) endpoint() (string, error) {
	ep := s.Endpoint
	if ep == "" {
		ep = EndpointFromEnv()
	}
	return fetch.CheckEndpoint(ep)
}

func (s *Source) header() http.Header {
	h := http.Header{}
	h.Set("User-Agent", fmt.Sprintf("airlock/%s; go/%s", version.String(), strings.TrimPrefix(runtime.Version(), "go")))
	if s.Token != "" {
		h.Set("Authorization", "Bearer "+s.Token)
	}
	return h
}

func (s *Source) httpClient() *http.Client {
	if s.Fetch != nil && s.Fetch.HTTP != nil {
		return s.Fetch.HTTP
	}
	return fetch.NewHTTPClient()
}

func (s *Source) get(ctx context.Context, op, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("hugging face %s: %w", op, err)
	}
	req.Header = s.header()
	resp, err := fetch.DoRetry(ctx, s.httpClient(), req, 4)
	if err != nil {
		return fmt.Errorf("hugging face %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("hugging face %s: read answer: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := fetch.ErrorMessage(body)
		if msg == "" {
			msg = resp.Header.Get("X-Error-Message")
		}
		return &APIError{Op: op, Status: resp.StatusCode, ErrorCode: resp.Header.Get("X-Error-Code"), Message: msg}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("hugging face %s: decode answer: %w", op, err)
	}
	return nil
}

func (s *Source) repoPath() string {
	owner, name, _ := strings.Cut(s.Model, "/")
	return url.PathEscape(owner) + "/" + url.PathEscape(name)
}

// refs lists branch and tag names, for error messages.
func (s *Source) refs(ctx context.Context, ep string) (branches, tags []string) {
	var data struct {
		Branches []struct{ Name string } `json:"branches"`
		Tags     []struct{ Name string } `json:"tags"`
	}
	if err := s.get(ctx, "refs", ep+"/api/models/"+s.repoPath()+"/refs", &data); err != nil {
		return nil, nil
	}
	for _, b := range data.Branches {
		branches = append(branches, b.Name)
	}
	for _, t := range data.Tags {
		tags = append(tags, t.Name)
	}
	return branches, tags
}

// Resolve pins the revision to a commit, lists and selects the files,
// downloads them into the verified cache and returns the snapshot.
func (s *Source) Resolve(ctx context.Context) (*source.Snapshot, error) {
	if s.Fetch == nil || s.Fetch.Cache == nil {
		return nil, errors.New("hugging face: no download cache configured")
	}
	if !modelIDPattern.MatchString(s.Model) {
		return nil, fmt.Errorf("hugging face: model %q is not owner/name", s.Model)
	}
	ep, err := s.endpoint()
	if err != nil {
		return nil, err
	}
	rev := s.Revision
	if rev == "" {
		rev = DefaultRevision
	}
	var info modelInfo
	u := ep + "/api/models/" + s.repoPath() + "/revision/" + url.PathEscape(rev) + "?blobs=true"
	if err := s.get(ctx, "model info "+s.Model+"@"+rev, u, &info); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.ErrorCode == "RevisionNotFound" {
			br, tg := s.refs(ctx, ep)
			return nil, fmt.Errorf("hugging face %s: unknown revision %q; available branches: %s; tags: %s",
				s.Model, rev, list(br), list(tg))
		}
		return nil, err
	}
	if len(info.SHA) != 40 {
		return nil, fmt.Errorf("hugging face %s@%s: hub gave no commit id", s.Model, rev)
	}
	commit := strings.ToLower(info.SHA)
	snap := &source.Snapshot{Source: manifests.Source{Kind: "huggingface", ID: s.Model, Revision: commit}}
	var items []fetch.Item
	seen := map[string]bool{}
	for _, f := range info.Siblings {
		p := f.RFilename
		base := p[strings.LastIndex(p, "/")+1:]
		if base == ".gitattributes" || base == ".gitignore" {
			continue
		}
		if err := manifests.CheckPath(p); err != nil {
			return nil, fmt.Errorf("hugging face %s: hub lists unsafe path %q: %w", s.Model, p, err)
		}
		if !manifests.MatchGlobs(s.Include, s.Exclude, p) {
			continue
		}
		if seen[p] {
			return nil, fmt.Errorf("hugging face %s: hub lists %s twice", s.Model, p)
		}
		seen[p] = true
		it := fetch.Item{Name: p, Header: s.header(), Size: -1,
			URL: ep + "/" + s.repoPath() + "/resolve/" + commit + "/" + escapePath(p)}
		if f.Size != nil {
			it.Size = *f.Size
		}
		entry := manifests.File{Path: p, Size: it.Size, Role: local.RoleOf(p), UpstreamRevision: commit}
		switch {
		case f.LFS != nil && f.LFS.SHA256 != "":
			it.SHA256 = strings.ToLower(f.LFS.SHA256)
			it.Size = f.LFS.Size
			entry.SHA256, entry.Size = it.SHA256, it.Size
		case f.BlobID != "":
			it.GitOID = strings.ToLower(f.BlobID)
		case s.TrustUnlisted:
			it.Unverified = true
		default:
			return nil, fmt.Errorf("hugging face %s: hub lists no checksum for %s (does this mirror support blob metadata? --trust-unlisted-checksums accepts it on first use)", s.Model, p)
		}
		snap.Files = append(snap.Files, source.File{Entry: entry})
		items = append(items, it)
	}
	if len(snap.Files) == 0 {
		return nil, fmt.Errorf("hugging face %s@%s: no files selected", s.Model, rev)
	}
	sort.Slice(snap.Files, func(i, j int) bool { return snap.Files[i].Entry.Path < snap.Files[j].Entry.Path })
	if s.BeforeDownload != nil {
		if err := s.BeforeDownload(snap); err != nil {
			return nil, err
		}
	}
	results, err := s.Fetch.FetchAll(ctx, "download "+s.Model+"@"+commit[:12], items)
	if err != nil {
		return nil, fmt.Errorf("hugging face %s@%s: %w", s.Model, rev, err)
	}
	byName := map[string]fetch.Result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	for i := range snap.Files {
		r := byName[snap.Files[i].Entry.Path]
		// Files listed only by git blob id get the sha256 computed here.
		snap.Files[i].Entry.SHA256, snap.Files[i].Entry.Size = r.SHA256, r.Size
		p := r.Path
		snap.Files[i].Open = func(context.Context) (io.ReadCloser, error) { return os.Open(p) }
	}
	return snap, nil
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, x := range parts {
		parts[i] = url.PathEscape(x)
	}
	return strings.Join(parts, "/")
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "(none)"
	}
	return strings.Join(xs, ", ")
}
