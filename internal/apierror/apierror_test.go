package apierror

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteShape(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, http.StatusTooManyRequests, New(TypeFor(http.StatusTooManyRequests), "rate_limit_exceeded", "", "busy"))
	want := `{"error":{"message":"busy","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}` + "\n"
	if got := rec.Body.String(); got != want {
		t.Fatalf("body = %s, want %s", got, want)
	}
	if rec.Code != 429 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
	}
}

func TestTypeFor(t *testing.T) {
	for status, want := range map[int]string{400: InvalidRequest, 401: Authentication, 408: Timeout, 413: InvalidRequest, 429: RateLimit, 500: Server, 503: Server} {
		if got := TypeFor(status); got != want {
			t.Errorf("TypeFor(%d) = %q, want %q", status, got, want)
		}
	}
}
