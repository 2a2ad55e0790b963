// Package modelscope is the bundle source for models on a ModelScope hub.
// It speaks the hub's HTTP API the way the official SDK's snapshot_download
// does: list revisions, list the files of a revision with their sha256,
// then download each file, and it hands out files only after they are in
// the verified download cache.
package modelscope

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
	"unicode"

	"github.com/airlock-dev/airlock/internal/version"
	"github.com/airlock-dev/airlock/manifests"
	"github.com/airlock-dev/airlock/source"
	"github.com/airlock-dev/airlock/source/fetch"
	"github.com/airlock-dev/airlock/source/local"
)

// DefaultEndpoint is the public ModelScope hub.
const DefaultEndpoint = "https://www.modelscope.cn"

// DefaultRevision is used when a spec names none, as the SDK does.
const DefaultRevision = "master"

// Scheme prefixes a ModelScope source spec: modelscope://owner/name[@rev].
const Scheme = "modelscope://"

// Source is a model on a ModelScope hub.
type Source struct {
	// Endpoint is the hub base URL; EndpointFromEnv or DefaultEndpoint.
	Endpoint string
	// Token is the SDK access token, sent as the m_session_id cookie. It
	// is never logged or written anywhere.
	Token string
	// Model is "owner/name".
	Model string
	// Revision is a branch or tag; DefaultRevision if empty.
	Revision string
	// Include and Exclude select files (see manifests.MatchGlobs).
	// .gitattributes and .gitignore are always skipped.
	Include, Exclude []string
	// Fetch downloads into the cache; required.
	Fetch *fetch.Client
	// TrustUnlisted downloads files the hub lists without a sha256,
	// checking only their size and computing the sha256 (trust on first
	// use; a lock file pins them afterwards). Off by default: such files
	// are refused.
	TrustUnlisted bool
	// BeforeDownload, if set, sees the listing (Files without Open)
	// before anything is downloaded; an error stops the resolve. Lock
	// checks use it so a changed upstream costs no download.
	BeforeDownload func(*source.Snapshot) error
}

var modelIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ParseSpec splits "modelscope://owner/name[@revision]".
func ParseSpec(spec string) (model, revision string, err error) {
	rest, ok := strings.CutPrefix(spec, Scheme)
	if !ok {
		return "", "", fmt.Errorf("modelscope spec %q: want %sowner/name[@revision]", spec, Scheme)
	}
	model, revision, _ = strings.Cut(rest, "@")
	if !modelIDPattern.MatchString(model) || strings.Contains(model, "..") {
		return "", "", fmt.Errorf("modelscope spec %q: model must be owner/name", spec)
	}
	if strings.Contains(spec, "@") && revision == "" {
		return "", "", fmt.Errorf("modelscope spec %q: empty revision after @", spec)
	}
	return model, revision, nil
}

// EndpointFromEnv returns the endpoint named by MODELSCOPE_DOMAIN (a bare
// host; https is prepended, as the SDK does), or DefaultEndpoint.
func EndpointFromEnv() string {
	d := strings.TrimSpace(os.Getenv("MODELSCOPE_DOMAIN"))
	if d == "" {
		return DefaultEndpoint
	}
	if strings.Contains(d, "://") {
		return d
	}
	return "https://" + d
}

// TokenFromEnv returns MODELSCOPE_API_TOKEN.
func TokenFromEnv() string { return strings.TrimSpace(os.Getenv("MODELSCOPE_API_TOKEN")) }

// UserAgent is sent with every request, in the SDK's "name/version; ..." form.
func UserAgent() string {
	return fmt.Sprintf("airlock/%s; go/%s; platform/%s-%s", version.String(),
		strings.TrimPrefix(runtime.Version(), "go"), runtime.GOOS, runtime.GOARCH)
}

// RepoFile is one entry of the hub's file listing.
type RepoFile struct {
	Name     string `json:"Name"`
	Path     string `json:"Path"`
	Type     string `json:"Type"` // "blob" or "tree"
	Size     int64  `json:"Size"`
	Sha256   string `json:"Sha256"`
	Revision string `json:"Revision"`
	IsLFS    bool   `json:"IsLFS"`
}

// Revisions lists the hub's branches and tags of the model.
type Revisions struct {
	Branches []string
	Tags     []string
}

// Has reports whether rev is a listed branch or tag.
func (r Revisions) Has(rev string) bool {
	for _, x := range append(append([]string{}, r.Branches...), r.Tags...) {
		if x == rev {
			return true
		}
	}
	return false
}

// APIError is a failed hub answer: an HTTP error or an envelope whose
// Success is false.
type APIError struct {
	Op        string
	Status    int
	Code      int
	Message   string
	RequestID string
}

// Error names the call, status, hub code and message.
func (e *APIError) Error() string {
	s := fmt.Sprintf("modelscope %s: HTTP %d", e.Op, e.Status)
	if e.Code != 0 && e.Code != 200 {
		s += fmt.Sprintf(", code %d", e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		s += " (private model? set MODELSCOPE_API_TOKEN or --token-file with a token that may read it)"
	}
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

type envelope struct {
	Code      int             `json:"Code"`
	Data      json.RawMessage `json:"Data"`
	Message   string          `json:"Message"`
	RequestID string          `json:"RequestId"`
	Success   bool            `json:"Success"`
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
	h.Set("User-Agent", UserAgent())
	if s.Token != "" {
		h.Set("Cookie", (&http.Cookie{Name: "m_session_id", Value: s.Token}).String())
	}
	return h
}

func (s *Source) httpClient() *http.Client {
	if s.Fetch != nil && s.Fetch.HTTP != nil {
		return s.Fetch.HTTP
	}
	return fetch.NewHTTPClient()
}

// api GETs an API path and decodes the envelope's Data into out.
func (s *Source) api(ctx context.Context, op, pathQuery string, out any) error {
	ep, err := s.endpoint()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+pathQuery, nil)
	if err != nil {
		return fmt.Errorf("modelscope %s: %w", op, err)
	}
	req.Header = s.header()
	resp, err := fetch.DoRetry(ctx, s.httpClient(), req, 4)
	if err != nil {
		return fmt.Errorf("modelscope %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("modelscope %s: read answer: %w", op, err)
	}
	return decodeEnvelope(op, resp.StatusCode, body, out)
}

// decodeEnvelope checks a hub answer (success means HTTP 200, Code 200 and
// Success true) and decodes its Data into out.
func decodeEnvelope(op string, status int, body []byte, out any) error {
	var env envelope
	jsonErr := json.Unmarshal(body, &env)
	if status != http.StatusOK || jsonErr != nil || env.Code != 200 || !env.Success {
		ae := &APIError{Op: op, Status: status, Code: env.Code, Message: env.Message, RequestID: env.RequestID}
		if jsonErr != nil && status == http.StatusOK {
			ae.Message = "answer is not a ModelScope JSON envelope"
		}
		if ae.Message == "" {
			ae.Message = fetch.ErrorMessage(body)
		}
		return ae
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("modelscope %s: decode Data: %w", op, err)
	}
	return nil
}

func (s *Source) modelPath() string {
	owner, name, _ := strings.Cut(s.Model, "/")
	return "/api/v1/models/" + url.PathEscape(owner) + "/" + url.PathEscape(name)
}

// ListRevisions fetches the model's branches and tags.
func (s *Source) ListRevisions(ctx context.Context) (Revisions, error) {
	var data struct {
		RevisionMap struct {
			Branches []struct{ Revision string } `json:"Branches"`
			Tags     []struct{ Revision string } `json:"Tags"`
		} `json:"RevisionMap"`
	}
	if err := s.api(ctx, "revisions of "+s.Model, s.modelPath()+"/revisions", &data); err != nil {
		return Revisions{}, err
	}
	var r Revisions
	for _, b := range data.RevisionMap.Branches {
		r.Branches = append(r.Branches, b.Revision)
	}
	for _, t := range data.RevisionMap.Tags {
		r.Tags = append(r.Tags, t.Revision)
	}
	return r, nil
}

// ListFiles fetches the recursive file listing of a revision.
func (s *Source) ListFiles(ctx context.Context, rev string) ([]RepoFile, error) {
	var data struct {
		Files []RepoFile `json:"Files"`
	}
	q := url.Values{"Revision": {rev}, "Recursive": {"True"}}
	if err := s.api(ctx, "files of "+s.Model+"@"+rev, s.modelPath()+"/repo/files?"+q.Encode(), &data); err != nil {
		return nil, err
	}
	return data.Files, nil
}

// FileURL is the download URL of one file at a revision.
func (s *Source) FileURL(ep, rev, filePath string) string {
	q := url.Values{"Revision": {rev}, "FilePath": {filePath}}
	return ep + s.modelPath() + "/repo?" + q.Encode()
}

// Resolve checks the revision, lists and selects the files, downloads
// them into the verified cache, and returns the snapshot.
func (s *Source) Resolve(ctx context.Context) (*source.Snapshot, error) {
	if s.Fetch == nil || s.Fetch.Cache == nil {
		return nil, errors.New("modelscope: no download cache configured")
	}
	if !modelIDPattern.MatchString(s.Model) {
		return nil, fmt.Errorf("modelscope: model %q is not owner/name", s.Model)
	}
	ep, err := s.endpoint()
	if err != nil {
		return nil, err
	}
	rev := s.Revision
	if rev == "" {
		rev = DefaultRevision
	}
	revs, err := s.ListRevisions(ctx)
	if err != nil {
		return nil, err
	}
	if !revs.Has(rev) {
		return nil, fmt.Errorf("modelscope %s: unknown revision %q; available branches: %s; tags: %s",
			s.Model, rev, list(revs.Branches), list(revs.Tags))
	}
	listing, err := s.ListFiles(ctx, rev)
	if err != nil {
		return nil, err
	}
	snap, items, err := s.plan(ep, rev, listing)
	if err != nil {
		return nil, err
	}
	if s.BeforeDownload != nil {
		if err := s.BeforeDownload(snap); err != nil {
			return nil, err
		}
	}
	results, err := s.Fetch.FetchAll(ctx, "download "+s.Model+"@"+rev, items)
	if err != nil {
		return nil, fmt.Errorf("modelscope %s@%s: %w", s.Model, rev, err)
	}
	byName := map[string]fetch.Result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	for i := range snap.Files {
		r := byName[snap.Files[i].Entry.Path]
		snap.Files[i].Entry.SHA256 = r.SHA256 // computed here for trusted-unlisted files
		p := r.Path
		snap.Files[i].Open = func(context.Context) (io.ReadCloser, error) { return os.Open(p) }
	}
	return snap, nil
}

// plan turns the hub's listing into the snapshot's entries (sorted by
// path, without Open) and the downloads, refusing unsafe or unverifiable
// entries.
func (s *Source) plan(ep, rev string, listing []RepoFile) (*source.Snapshot, []fetch.Item, error) {
	snap := &source.Snapshot{Source: manifests.Source{Kind: "modelscope", ID: s.Model, Revision: rev}}
	var items []fetch.Item
	seen := map[string]bool{}
	for _, f := range listing {
		if f.Type == "tree" {
			continue
		}
		if f.Type != "blob" {
			return nil, nil, fmt.Errorf("modelscope %s: %s: unknown entry type %q", s.Model, f.Path, f.Type)
		}
		base := f.Path[strings.LastIndex(f.Path, "/")+1:]
		if base == ".gitattributes" || base == ".gitignore" {
			continue
		}
		if err := manifests.CheckPath(f.Path); err != nil {
			return nil, nil, fmt.Errorf("modelscope %s: hub lists unsafe path %q: %w", s.Model, f.Path, err)
		}
		if !manifests.MatchGlobs(s.Include, s.Exclude, f.Path) {
			continue
		}
		if seen[f.Path] {
			return nil, nil, fmt.Errorf("modelscope %s: hub lists %s twice", s.Model, f.Path)
		}
		seen[f.Path] = true
		sha := strings.ToLower(f.Sha256)
		if sha == "" && !s.TrustUnlisted {
			return nil, nil, fmt.Errorf("modelscope %s: hub lists no sha256 for %s; refusing unverifiable content (--trust-unlisted-checksums accepts it on first use)", s.Model, f.Path)
		}
		if sha != "" && !isHex64(sha) {
			return nil, nil, fmt.Errorf("modelscope %s: hub lists a malformed sha256 %q for %s", s.Model, sha, f.Path)
		}
		if f.Size < 0 {
			return nil, nil, fmt.Errorf("modelscope %s: %s: negative size", s.Model, f.Path)
		}
		if len(f.Revision) > 256 || strings.IndexFunc(f.Revision, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return nil, nil, fmt.Errorf("modelscope %s: %s: malformed revision %q", s.Model, f.Path, f.Revision)
		}
		snap.Files = append(snap.Files, source.File{Entry: manifests.File{
			Path: f.Path, Size: f.Size, SHA256: sha, Role: local.RoleOf(f.Path), UpstreamRevision: f.Revision,
		}})
		items = append(items, fetch.Item{
			Name: f.Path, URL: s.FileURL(ep, rev, f.Path), Header: s.header(), Size: f.Size, SHA256: sha,
			Unverified: sha == "",
		})
	}
	if len(snap.Files) == 0 {
		return nil, nil, fmt.Errorf("modelscope %s@%s: no files selected", s.Model, rev)
	}
	sort.Slice(snap.Files, func(i, j int) bool { return snap.Files[i].Entry.Path < snap.Files[j].Entry.Path })
	return snap, items, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "(none)"
	}
	return strings.Join(xs, ", ")
}
