// Package progress reports the progress of long operations: a live bar with
// bytes/s and ETA when writing to a terminal, and structured JSON log lines
// (start, every Interval, finish) otherwise, so scripts and log collectors
// get the same facts without terminal noise.
package progress

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Interval is how often a non-terminal Bar logs a progress line.
var Interval = 10 * time.Second

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Logger returns the process-wide structured logger: JSON lines on stderr.
// Secrets must never be passed to it.
func Logger() *slog.Logger { return logger }

var logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))

// SetLogger replaces the logger returned by Logger (tests use it).
func SetLogger(l *slog.Logger) { logger = l }

// Bar tracks one long operation measured in bytes (or items when Items is
// used). It is safe for concurrent use and implements io.Writer so it can sit
// behind an io.TeeReader or io.MultiWriter.
type Bar struct {
	mu      sync.Mutex
	label   string
	total   int64
	done    int64
	start   time.Time
	lastLog time.Time
	bar     *progressbar.ProgressBar // nil when not a terminal
	log     *slog.Logger
	closed  bool
}

// New starts a Bar for an operation of total bytes (-1 if unknown) that
// renders on w when w is a terminal and logs JSON lines otherwise.
func New(w io.Writer, label string, total int64) *Bar {
	b := &Bar{label: label, total: total, start: time.Now(), log: Logger()}
	b.lastLog = b.start
	if IsTerminal(w) {
		b.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
		)
	} else {
		b.log.Info("progress", "op", label, "event", "start", "total", total)
	}
	return b
}

// Write counts len(p) bytes of progress; it never fails.
func (b *Bar) Write(p []byte) (int, error) {
	b.Add(int64(len(p)))
	return len(p), nil
}

// Add records n more units done.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if b.bar != nil {
		_ = b.bar.Add64(n)
		return
	}
	if now := time.Now(); now.Sub(b.lastLog) >= Interval {
		b.lastLog = now
		b.log.Info("progress", "op", b.label, "event", "update", "done", b.done, "total", b.total,
			"bytes_per_s", rate(b.done, now.Sub(b.start)))
	}
}

// Done returns the units recorded so far.
func (b *Bar) Done() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// Finish ends the operation; err (may be nil) is reported in the final line.
// Calling Finish more than once is harmless.
func (b *Bar) Finish(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	elapsed := time.Since(b.start)
	if b.bar != nil {
		if err == nil {
			_ = b.bar.Finish()
		} else {
			_ = b.bar.Exit()
		}
		return
	}
	attrs := []any{"op", b.label, "event", "finish", "done", b.done, "total", b.total,
		"elapsed_ms", elapsed.Milliseconds(), "bytes_per_s", rate(b.done, elapsed)}
	if err != nil {
		b.log.Error("progress", append(attrs, "error", err.Error())...)
		return
	}
	b.log.Info("progress", attrs...)
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}
