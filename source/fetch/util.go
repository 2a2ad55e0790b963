package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// jitter returns a random value in [0, n).
func jitter(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}

// CheckEndpoint validates a hub endpoint and returns it without a trailing
// slash. Plain http is refused except to loopback addresses (tests, local
// mirrors on the same machine): credentials and listings must not travel
// in clear text.
func CheckEndpoint(ep string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(ep))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("endpoint %q: not an absolute URL", ep)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", fmt.Errorf("endpoint %q: plain http is only allowed to loopback; use https", ep)
		}
	default:
		return "", fmt.Errorf("endpoint %q: scheme must be https", ep)
	}
	if u.User != nil {
		return "", fmt.Errorf("endpoint %q: credentials in URLs are not allowed; use a token file", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// DoRetry sends a small API request, retrying transport errors, 5xx and
// 429 (honouring Retry-After up to a minute) with backoff. The caller
// closes the response body.
func DoRetry(ctx context.Context, c *http.Client, req *http.Request, attempts int) (*http.Response, error) {
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			wait := backoff(500*time.Millisecond, 10*time.Second, i)
			var r *retryable
			if errors.As(last, &r) && r.wait > 0 {
				wait = min(r.wait, time.Minute)
			}
			if err := sleepCtx(ctx, wait); err != nil {
				return nil, err
			}
		}
		resp, err := c.Do(req.Clone(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			last = &retryable{err: err}
			continue
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			last = &retryable{err: fmt.Errorf("HTTP %d", resp.StatusCode), wait: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
			if i < attempts-1 {
				resp.Body.Close()
				continue
			}
		}
		return resp, nil
	}
	return nil, fmt.Errorf("giving up after %d attempts: %w", attempts, last)
}
