// Package fetch downloads files over HTTP into a content-addressed cache,
// the way real networks need it: several files at once and large files in
// Range parts, resume after interruption, retries with backoff (honouring
// Retry-After), stall detection, and every file checked against the sha256
// (or git blob id) its hub listed before it is handed out.
package fetch

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/sha256-simd"

	"github.com/airlock-dev/airlock/internal/progress"
)

// Item is one file to download.
type Item struct {
	// Name identifies the file in progress output and errors (e.g. its
	// path in the model repository).
	Name string
	// URL is fetched with GET. Redirects are followed; credentials in
	// Header are dropped by net/http when a redirect leaves the host.
	URL string
	// Header is sent with every request (cookies, authorization). It is
	// never logged.
	Header http.Header
	// Size is the expected size in bytes, or -1 if unknown.
	Size int64
	// SHA256 is the expected lowercase hex sha256. Either it or GitOID
	// must be set: nothing unverified enters the cache.
	SHA256 string
	// GitOID is the expected git blob id (hex SHA-1 of "blob <size>\0" +
	// content) for hubs that list only that; the sha256 is then computed.
	GitOID string
	// Unverified allows an item with neither checksum: only its size is
	// checked and its sha256 is computed ("trust on first use", for hubs
	// that list no checksum for some files; a lock file then pins it). It
	// must be an explicit user choice.
	Unverified bool
}

// Result is a downloaded, verified file.
type Result struct {
	Name   string
	Path   string // inside the cache; read-only
	SHA256 string
	Size   int64
	Cached bool // true if no byte had to be downloaded
}

// Client downloads Items. The zero value is not usable; set Cache, and
// leave the tuning fields zero to get the defaults.
type Client struct {
	// HTTP is the client used for every request; NewHTTPClient's if nil.
	HTTP *http.Client
	// Cache receives every verified file.
	Cache *Cache
	// Jobs is how many connections run at once (default 4).
	Jobs int
	// PartSize: files larger than this are fetched in parallel Range
	// parts of this size (default 160 MiB, as the ModelScope SDK does).
	PartSize int64
	// Attempts is how many times one request is tried before giving up
	// (default 6).
	Attempts int
	// VerifyAttempts is how many times a file is downloaded from scratch
	// when its bytes do not match the listed checksum (default 2).
	VerifyAttempts int
	// Backoff is the first retry delay; it doubles up to MaxBackoff
	// (defaults 500ms and 30s). Retry-After is honoured up to MaxRetryAfter
	// (default 5m); a longer demand fails the download.
	Backoff, MaxBackoff, MaxRetryAfter time.Duration
	// StallTimeout aborts and retries a request that delivers no byte for
	// this long (default 60s).
	StallTimeout time.Duration
	// UserAgent is sent as User-Agent.
	UserAgent string
	// Progress is where bars are drawn (a terminal) or whose absence of a
	// terminal selects JSON log lines; os.Stderr if nil.
	Progress io.Writer
	// Log receives retry and resume events; progress.Logger() if nil.
	Log *slog.Logger

	// sleep waits between retries; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
	// report makes the progress display; tests replace it.
	report func(w io.Writer, label string, total int64, files int) reporter
}

// NewHTTPClient returns the HTTP client used by default: connection and
// header timeouts, TLS 1.2 or newer, no overall timeout (large files take
// long; stalls are caught by StallTimeout instead).
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 30 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	t.MaxIdleConnsPerHost = 16
	if t.TLSClientConfig != nil {
		t.TLSClientConfig.MinVersion = 0x0303
	}
	return &http.Client{Transport: t}
}

func (c *Client) defaults() {
	if c.HTTP == nil {
		c.HTTP = NewHTTPClient()
	}
	if c.Jobs <= 0 {
		c.Jobs = 4
	}
	if c.PartSize <= 0 {
		c.PartSize = 160 << 20
	}
	if c.Attempts <= 0 {
		c.Attempts = 6
	}
	if c.VerifyAttempts <= 0 {
		c.VerifyAttempts = 2
	}
	if c.Backoff <= 0 {
		c.Backoff = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 5 * time.Minute
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 60 * time.Second
	}
	if c.Progress == nil {
		c.Progress = os.Stderr
	}
	if c.Log == nil {
		c.Log = progress.Logger()
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
}

// FetchAll downloads every item (skipping those already cached), showing
// progress labelled label (on a terminal a live line per file under an
// overall line, with bytes/s and ETA; otherwise JSON progress lines), and
// returns results in item order. Every item is attempted even if another
// fails, so a re-run has less to do; the error names each file that
// failed. Items with the same content (same checksum) are fetched once.
func (c *Client) FetchAll(ctx context.Context, label string, items []Item) ([]Result, error) {
	if c.Cache == nil {
		return nil, errors.New("fetch: no cache configured")
	}
	c.defaults()
	var total int64
	for _, it := range items {
		if it.Size > 0 {
			total += it.Size
		}
	}
	rep := c.report
	if rep == nil {
		rep = newReporter
	}
	bar := rep(c.Progress, label, total, len(items))
	cl := c
	if b, ok := bar.(*board); ok {
		// On a terminal, retry notes go above the live block.
		copied := *c
		copied.Log = slog.New(&boardHandler{b: b})
		cl = &copied
	}
	conns := make(chan struct{}, c.Jobs)
	results := make([]Result, len(items))
	errs := make([]error, len(items))
	// Identical content shares one cache entry and one partial download,
	// so only the first item with a given checksum is fetched.
	first := map[string]int{}
	var wg sync.WaitGroup
	for i, it := range items {
		if k := contentKey(it); k != "" {
			if _, dup := first[k]; dup {
				continue
			}
			first[k] = i
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = cl.fetch(ctx, it, bar, conns)
		}()
	}
	wg.Wait()
	for i, it := range items {
		j, ok := first[contentKey(it)]
		if !ok || j == i {
			continue
		}
		results[i], errs[i] = results[j], nil
		results[i].Name = it.Name
		if errs[j] != nil {
			errs[i] = fmt.Errorf("download %s: same content as %s, which failed", it.Name, items[j].Name)
		} else if it.Size >= 0 && results[j].Size != it.Size {
			errs[i] = fmt.Errorf("download %s: listed with the checksum of %s but a different size", it.Name, items[j].Name)
		}
		bar.cached(max(it.Size, 0))
	}
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Error() < failed[j].Error() })
	err := errors.Join(failed...)
	bar.finish(err)
	if err != nil {
		return nil, err
	}
	return results, nil
}

// contentKey names an item's content by its checksum ("" if it has none).
func contentKey(it Item) string {
	switch {
	case it.SHA256 != "":
		return "sha256-" + it.SHA256
	case it.GitOID != "":
		return "git-" + it.GitOID
	}
	return ""
}

// urlKey names unverified content's partial download by its URL.
func urlKey(u string) string {
	h := sha256.Sum256([]byte(u))
	return hex.EncodeToString(h[:16])
}

// Fetch downloads one item (or finds it in the cache).
func (c *Client) Fetch(ctx context.Context, it Item) (Result, error) {
	rs, err := c.FetchAll(ctx, "download "+it.Name, []Item{it})
	if err != nil {
		return Result{}, err
	}
	return rs[0], nil
}

func (c *Client) fetch(ctx context.Context, it Item, bar reporter, conns chan struct{}) (Result, error) {
	res, err := c.fetch1(ctx, it, bar, conns)
	if err != nil {
		return res, fmt.Errorf("download %s: %w", it.Name, err)
	}
	return res, nil
}

func (c *Client) fetch1(ctx context.Context, it Item, bar reporter, conns chan struct{}) (Result, error) {
	res := Result{Name: it.Name, Size: it.Size}
	var key string
	switch {
	case it.SHA256 != "":
		if !validHex(it.SHA256, 64) {
			return res, fmt.Errorf("upstream sha256 %q is not 64 lowercase hex digits", it.SHA256)
		}
		if p, ok := c.Cache.Lookup(it.SHA256, it.Size); ok {
			bar.cached(max(it.Size, 0))
			res.Path, res.SHA256, res.Cached = p, it.SHA256, true
			return res, nil
		}
		key = "sha256-" + it.SHA256
	case it.GitOID != "":
		if !validHex(it.GitOID, 40) {
			return res, fmt.Errorf("upstream git blob id %q is not 40 lowercase hex digits", it.GitOID)
		}
		if p, sha, ok := c.Cache.lookupAlias(it.GitOID, it.Size); ok {
			bar.cached(max(it.Size, 0))
			res.Path, res.SHA256, res.Cached = p, sha, true
			return res, nil
		}
		key = "git-" + it.GitOID
	case it.Unverified:
		c.Log.Warn("upstream lists no checksum; trusting the downloaded bytes on first use", "file", it.Name)
		key = "url-" + urlKey(it.URL)
	default:
		return res, errors.New("upstream lists no checksum; refusing to download unverifiable content")
	}
	dir := c.Cache.partialDir(key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	var lastErr error
	for attempt := 1; attempt <= c.VerifyAttempts; attempt++ {
		start := time.Now()
		got, d, err := c.download(ctx, it, dir, bar, conns)
		if err != nil {
			return res, err
		}
		var sha, oid string
		var n int64
		if d != nil {
			sha, oid = d.sums()
			n = d.n
		} else if sha, oid, n, err = hashFile(got, it.GitOID != ""); err != nil {
			return res, err
		}
		switch {
		case it.Size >= 0 && n != it.Size:
			lastErr = &IntegrityError{Name: it.Name, Kind: "size", Want: strconv.FormatInt(it.Size, 10), Got: strconv.FormatInt(n, 10)}
		case it.SHA256 != "" && sha != it.SHA256:
			lastErr = &IntegrityError{Name: it.Name, Want: it.SHA256, Got: sha}
		case it.SHA256 == "" && it.GitOID != "" && oid != it.GitOID:
			lastErr = &IntegrityError{Name: it.Name, Kind: "git blob id", Want: it.GitOID, Got: oid}
		default:
			p, err := c.Cache.commit(got, sha)
			if err != nil {
				return res, err
			}
			if it.GitOID != "" {
				if err := c.Cache.writeAlias(it.GitOID, sha); err != nil {
					return res, fmt.Errorf("cache alias: %w", err)
				}
			}
			_ = os.RemoveAll(dir)
			c.Log.Debug("downloaded", "file", it.Name, "bytes", n, "sha256", sha,
				"elapsed_ms", time.Since(start).Milliseconds())
			res.Path, res.SHA256, res.Size = p, sha, n
			return res, nil
		}
		// Bad bytes: throw every part away and start over.
		c.Log.Warn("download failed verification; starting over", "file", it.Name,
			"attempt", attempt, "error", lastErr.Error())
		if err := os.RemoveAll(dir); err != nil {
			return res, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, err
		}
	}
	_ = os.RemoveAll(dir)
	return res, fmt.Errorf("after %d attempts: %w", c.VerifyAttempts, lastErr)
}

// download fetches the item's bytes into dir, resuming what earlier runs
// left there, and returns the path of the assembled file and, when it was
// hashed while being assembled, its digest.
func (c *Client) download(ctx context.Context, it Item, dir string, bar reporter, conns chan struct{}) (string, *digest, error) {
	count, finish := bar.file(it.Name, it.Size)
	var err error
	var out string
	var d *digest
	if it.Size > c.PartSize {
		out, d, err = c.downloadParts(ctx, it, dir, count, conns)
		if errors.Is(err, errNoRanges) {
			c.Log.Warn("server ignores Range; downloading in one stream", "file", it.Name)
			err = nil
			_ = os.RemoveAll(dir)
			if err = os.MkdirAll(dir, 0o755); err == nil {
				out, d, err = c.downloadStream(ctx, it, dir, count, conns)
			}
		}
	} else {
		out, d, err = c.downloadStream(ctx, it, dir, count, conns)
	}
	finish(err)
	return out, d, err
}

// downloadStream fetches the whole file as one resumable segment, hashing
// as bytes arrive so the file need not be read again.
func (c *Client) downloadStream(ctx context.Context, it Item, dir string, count func(int64), conns chan struct{}) (string, *digest, error) {
	p := filepath.Join(dir, "stream")
	end := int64(-1)
	if it.Size >= 0 {
		end = it.Size - 1
	}
	if it.Size == 0 {
		return p, nil, os.WriteFile(p, nil, 0o644)
	}
	seg := segment{path: p, start: 0, end: end}
	if it.Size > 0 {
		seg.digest = newDigest(it.Size, it.GitOID != "")
	}
	if err := c.getSegment(ctx, it, seg, count, conns); err != nil {
		return "", nil, err
	}
	if seg.digest != nil {
		if st, err := os.Stat(p); err == nil && st.Size() == seg.digest.n {
			return p, seg.digest, nil
		}
	}
	return p, nil, nil
}

// downloadParts fetches PartSize pieces in parallel and joins them,
// hashing while joining so the file is read once.
func (c *Client) downloadParts(ctx context.Context, it Item, dir string, count func(int64), conns chan struct{}) (string, *digest, error) {
	var segs []segment
	for off := int64(0); off < it.Size; off += c.PartSize {
		end := min(off+c.PartSize, it.Size) - 1
		segs = append(segs, segment{path: filepath.Join(dir, fmt.Sprintf("part-%d-%d", off, end)), start: off, end: end, part: true})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(segs))
	var wg sync.WaitGroup
	for i, s := range segs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.getSegment(ctx, it, s, count, conns)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if errors.Is(err, errNoRanges) {
			return "", nil, errNoRanges
		}
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return "", nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", nil, err
	}
	out := filepath.Join(dir, "joined")
	d := newDigest(it.Size, it.GitOID != "")
	f, err := os.Create(out)
	if err != nil {
		return "", nil, err
	}
	for _, s := range segs {
		pf, err := os.Open(s.path)
		if err != nil {
			f.Close()
			return "", nil, err
		}
		_, err = io.Copy(io.MultiWriter(f, d), pf)
		pf.Close()
		if err != nil {
			f.Close()
			return "", nil, err
		}
	}
	if err := f.Close(); err != nil {
		return "", nil, err
	}
	for _, s := range segs {
		_ = os.Remove(s.path)
	}
	return out, d, nil
}

// segment is a byte range [start, end] of the file kept in path; end < 0
// means "to the end, size unknown".
type segment struct {
	path       string
	start, end int64
	part       bool    // one of several parts: always ask for a Range
	digest     *digest // if set, kept equal to the hash of the file's bytes
}

// syncDigest makes the segment's digest cover exactly the first have
// bytes of its file, re-reading them only when it fell out of step (a
// partial left by an earlier run, or a failed write).
func (s segment) syncDigest(size int64, withGit bool, have int64) error {
	if s.digest == nil || s.digest.n == have {
		return nil
	}
	*s.digest = *newDigest(size, withGit)
	if have == 0 {
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(s.digest, f, have)
	return err
}

var errNoRanges = errors.New("server does not honour Range requests")

// StatusError is an HTTP answer that is not a success.
type StatusError struct {
	Code    int
	Message string // from the hub's error body, if it had one
}

// Error gives the status, a hint for auth failures, and the hub's message.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Code, http.StatusText(e.Code))
	switch e.Code {
	case http.StatusUnauthorized, http.StatusForbidden:
		s += " (private or gated model: supply a token)"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// retryable errors are worth another attempt; wait, if non-zero, is the
// delay the server asked for.
type retryable struct {
	err  error
	wait time.Duration
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// getSegment downloads one segment, resuming from what its file holds.
func (c *Client) getSegment(ctx context.Context, it Item, s segment, count func(int64), conns chan struct{}) error {
	var last error
	credited := false
	for attempt := 1; attempt <= c.Attempts; attempt++ {
		if attempt > 1 {
			var wait time.Duration
			var r *retryable
			if errors.As(last, &r) {
				wait = r.wait
			}
			if wait > c.MaxRetryAfter {
				return fmt.Errorf("server asks to retry after %s (more than %s): %w", wait, c.MaxRetryAfter, last)
			}
			if wait == 0 {
				wait = backoff(c.Backoff, c.MaxBackoff, attempt-1)
			}
			c.Log.Warn("retrying download", "file", it.Name, "attempt", attempt, "wait_ms", wait.Milliseconds(), "error", last.Error())
			if err := c.sleep(ctx, wait); err != nil {
				return err
			}
		}
		have := int64(0)
		if st, err := os.Stat(s.path); err == nil {
			have = st.Size()
		}
		if !credited {
			count(have) // bytes from an earlier run count as done
			credited = true
		}
		if s.end >= 0 && s.start+have > s.end+1 {
			// More than the segment holds: the file is not ours; restart.
			count(-have)
			if err := os.Remove(s.path); err != nil {
				return err
			}
			have = 0
		}
		if s.end >= 0 && s.start+have == s.end+1 {
			return nil
		}
		err := c.getOnce(ctx, it, s, have, count, conns)
		if err == nil {
			return nil
		}
		var r *retryable
		if !errors.As(err, &r) || ctx.Err() != nil {
			return err
		}
		last = err
	}
	return fmt.Errorf("giving up after %d attempts: %w", c.Attempts, last)
}

// getOnce makes one request for the rest of a segment and appends what
// arrives. Errors that are worth retrying are wrapped in *retryable.
func (c *Client) getOnce(ctx context.Context, it Item, s segment, have int64, count func(int64), conns chan struct{}) error {
	select {
	case conns <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-conns }()

	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, it.URL, nil)
	if err != nil {
		return err
	}
	for k, v := range it.Header {
		req.Header[k] = v
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	from := s.start + have
	ranged := from > 0 || s.part
	if ranged {
		if s.end >= 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, s.end))
		} else {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
		}
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return &retryable{err: err}
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusPartialContent && ranged:
		gotFrom, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || gotFrom != from {
			_ = os.Remove(s.path)
			count(-have)
			return &retryable{err: fmt.Errorf("server answered Range %d- with Content-Range %q", from, resp.Header.Get("Content-Range"))}
		}
	case resp.StatusCode == http.StatusOK:
		if s.part {
			return errNoRanges
		}
		if have > 0 {
			// The whole file again, not the rest: start over from zero.
			c.Log.Warn("server ignored Range; restarting file from zero", "file", it.Name, "had_bytes", have)
			count(-have)
			have = 0
			from = 0
			if err := os.Remove(s.path); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		if total, ok := contentRangeTotal(resp.Header.Get("Content-Range")); ok && it.Size >= 0 && total != it.Size {
			return fmt.Errorf("server holds %d bytes but the listing says %d", total, it.Size)
		}
		_ = os.Remove(s.path)
		count(-have)
		return &retryable{err: errors.New("server rejected the resume offset (416); restarting file")}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return &retryable{err: statusError(resp), wait: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	default:
		return statusError(resp)
	}

	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if have == 0 {
		flags = os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	}
	f, err := os.OpenFile(s.path, flags, 0o644)
	if err != nil {
		return err
	}
	want := int64(-1)
	if s.end >= 0 {
		want = s.end + 1 - from
	}
	body := &stallReader{r: resp.Body, timeout: c.StallTimeout, cancel: cancel}
	body.arm()
	var src io.Reader = body
	if want >= 0 {
		src = io.LimitReader(body, want)
	}
	var dst io.Writer = &countingWriter{w: f, count: count}
	if s.digest != nil {
		if err := s.syncDigest(it.Size, it.GitOID != "", have); err != nil {
			f.Close()
			return err
		}
		dst = io.MultiWriter(dst, s.digest)
	}
	n, copyErr := io.Copy(dst, src)
	body.stop()
	closeErr := f.Close()
	if copyErr != nil {
		if cause := context.Cause(reqCtx); errors.Is(cause, errStalled) {
			copyErr = fmt.Errorf("%w after %d bytes", errStalled, from+n)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &retryable{err: fmt.Errorf("connection lost after %d of %s bytes: %w", from+n, sizeString(s.end), copyErr)}
	}
	if closeErr != nil {
		return closeErr
	}
	if want >= 0 && n < want {
		if from+n == 0 {
			return &retryable{err: errors.New("empty response body")}
		}
		return &retryable{err: fmt.Errorf("short response body: %d of %d bytes", from+n, s.end+1)}
	}
	if want < 0 && n == 0 && from == 0 && resp.ContentLength != 0 {
		return &retryable{err: errors.New("empty response body")}
	}
	return nil
}

func sizeString(end int64) string {
	if end < 0 {
		return "?"
	}
	return strconv.FormatInt(end+1, 10)
}

// statusError reads a short error body (the hub's JSON envelope or plain
// text) into a StatusError.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return &StatusError{Code: resp.StatusCode, Message: ErrorMessage(b)}
}

// ErrorMessage extracts a human-readable message from an error body: the
// "Message" of a ModelScope envelope, the "error" of a Hugging Face answer,
// or short plain text.
func ErrorMessage(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if strings.HasPrefix(s, "{") {
		var v struct {
			Message string `json:"Message"`
			Error   string `json:"error"`
		}
		if jsonUnmarshal(b, &v) == nil {
			if v.Message != "" {
				return v.Message
			}
			if v.Error != "" {
				return v.Error
			}
		}
	}
	if len(s) > 200 || strings.ContainsAny(s, "<") {
		return ""
	}
	return s
}

// contentRangeStart parses "bytes START-END/TOTAL".
func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	return n, err == nil && n >= 0
}

// contentRangeTotal parses the total of "bytes */TOTAL" or "bytes A-B/TOTAL".
func contentRangeTotal(h string) (int64, bool) {
	_, t, ok := strings.Cut(h, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	return n, err == nil && n >= 0
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		if secs > 1<<31 {
			secs = 1 << 31
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// backoff is base*2^(n-1), capped, with the upper half jittered.
func backoff(base, maxWait time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	half := d / 2
	return half + time.Duration(jitter(int64(half)+1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type countingWriter struct {
	w     io.Writer
	count func(int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.count(int64(n))
	return n, err
}

var errStalled = errors.New("download stalled")

// stallReader cancels the request when no byte arrives for timeout.
type stallReader struct {
	r       io.Reader
	timeout time.Duration
	cancel  context.CancelCauseFunc
	mu      sync.Mutex
	t       *time.Timer
}

func (s *stallReader) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t = time.AfterFunc(s.timeout, func() { s.cancel(fmt.Errorf("%w: no data for %s", errStalled, s.timeout)) })
}

func (s *stallReader) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t != nil {
		s.t.Stop()
	}
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.mu.Lock()
		s.t.Reset(s.timeout)
		s.mu.Unlock()
	}
	return n, err
}
