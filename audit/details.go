// Package audit writes and verifies airlock's tamper-evident audit log: one
// JSON record per request, each carrying the sha256 of the previous record.
package audit

import "context"

// Details are the per-request facts a handler adds to its audit record. The
// serving middleware puts a *Details in the request context, lets the handler
// fill it, and writes the record (with time, request id, user, client
// address, route, status and latency, which it knows itself) when the
// request ends.
type Details struct {
	Model            string         // model name
	ManifestSHA256   string         // sha256 of the served bundle manifest
	Params           map[string]any // sampling parameters as requested
	Prompt           string         // rendered prompt or request text
	Response         string         // generated text
	PromptTokens     int
	CompletionTokens int
	FinishReason     string
	Error            string // the client-facing error message, if any
}

type detailsKey struct{}

// WithDetails returns a context carrying d.
func WithDetails(ctx context.Context, d *Details) context.Context {
	return context.WithValue(ctx, detailsKey{}, d)
}

// DetailsFrom returns the request's Details. It never returns nil: without
// a record in ctx it returns a fresh one that nothing will write.
func DetailsFrom(ctx context.Context) *Details {
	if d, ok := ctx.Value(detailsKey{}).(*Details); ok && d != nil {
		return d
	}
	return &Details{}
}
