package fetch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/airlock-dev/airlock/internal/progress"
)

// reporter shows download progress: one overall figure and one per file.
type reporter interface {
	// file starts a file and returns its byte counter (which also counts
	// towards the overall total) and the function that ends it.
	file(name string, size int64) (add func(int64), done func(error))
	// cached counts bytes that were already in the cache.
	cached(n int64)
	finish(err error)
}

// newReporter draws live bars on a terminal and writes JSON progress lines
// (overall, and per file when there are several) otherwise.
func newReporter(w io.Writer, label string, total int64, files int) reporter {
	if progress.IsTerminal(w) {
		return newBoard(w, label, total, 200*time.Millisecond)
	}
	return &logReporter{overall: progress.New(w, label, total), w: w, perFile: files > 1}
}

type logReporter struct {
	overall *progress.Bar
	w       io.Writer
	perFile bool
}

func (r *logReporter) file(name string, size int64) (func(int64), func(error)) {
	if !r.perFile {
		return r.overall.Add, func(error) {}
	}
	b := progress.New(r.w, "download "+name, size)
	return func(n int64) { r.overall.Add(n); b.Add(n) }, b.Finish
}

func (r *logReporter) cached(n int64)   { r.overall.Add(n) }
func (r *logReporter) finish(err error) { r.overall.Finish(err) }

// board is the terminal display: a line per active file (bytes, percent,
// rate, ETA) under an overall line, redrawn in place. Finished files
// scroll up as permanent lines.
type board struct {
	mu     sync.Mutex
	w      io.Writer
	label  string
	total  int64
	done   int64
	start  time.Time
	active []*boardFile
	drawn  int // lines of the live block currently on screen
	stop   chan struct{}
	wg     sync.WaitGroup
}

type boardFile struct {
	name       string
	size, done int64
	start      time.Time
}

func newBoard(w io.Writer, label string, total int64, every time.Duration) *board {
	b := &board{w: w, label: label, total: total, start: time.Now(), stop: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.mu.Lock()
				b.redraw("")
				b.mu.Unlock()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

func (b *board) file(name string, size int64) (func(int64), func(error)) {
	f := &boardFile{name: name, size: size, start: time.Now()}
	b.mu.Lock()
	b.active = append(b.active, f)
	b.mu.Unlock()
	add := func(n int64) {
		b.mu.Lock()
		f.done += n
		b.done += n
		b.mu.Unlock()
	}
	done := func(err error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		for i, x := range b.active {
			if x == f {
				b.active = append(b.active[:i], b.active[i+1:]...)
				break
			}
		}
		status := "done"
		if err != nil {
			status = "FAILED"
		}
		b.redraw(fmt.Sprintf("%-6s %s  %s  %s", status, f.name, sizeText(f.done), rateText(f.done, time.Since(f.start))))
	}
	return add, done
}

func (b *board) cached(n int64) {
	b.mu.Lock()
	b.done += n
	b.mu.Unlock()
}

func (b *board) finish(err error) {
	close(b.stop)
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active = nil
	status := "finished"
	if err != nil {
		status = "failed"
	}
	b.redraw(fmt.Sprintf("%s %s: %s in %s (%s)", b.label, status, sizeText(b.done),
		time.Since(b.start).Round(100*time.Millisecond), rateText(b.done, time.Since(b.start))))
	b.drawn = 0
}

// redraw erases the live block, prints permanent (if any) above it, and
// draws the block again. The caller holds b.mu.
func (b *board) redraw(permanent string) {
	var sb strings.Builder
	if b.drawn > 0 {
		fmt.Fprintf(&sb, "\x1b[%dA", b.drawn) // cursor up to the block's first line
	}
	sb.WriteString("\r\x1b[J") // clear from there to the end of the screen
	if permanent != "" {
		sb.WriteString(permanent + "\n")
	}
	lines := 0
	if b.stopped() {
		b.drawn = 0
		_, _ = io.WriteString(b.w, sb.String())
		return
	}
	for _, f := range b.active {
		sb.WriteString("  " + lineFor(f.name, f.done, f.size, time.Since(f.start)) + "\n")
		lines++
	}
	sb.WriteString(lineFor(b.label, b.done, b.total, time.Since(b.start)) + "\n")
	lines++
	b.drawn = lines
	_, _ = io.WriteString(b.w, sb.String())
}

func (b *board) stopped() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}

// lineFor renders "name  [=====>    ]  40%  12.0 MiB / 30.0 MiB  5.1 MiB/s  ETA 3s".
func lineFor(name string, done, total int64, elapsed time.Duration) string {
	const width = 24
	if len(name) > 40 {
		name = "…" + name[len(name)-39:]
	}
	if total <= 0 {
		return fmt.Sprintf("%-40s  %s  %s", name, sizeText(done), rateText(done, elapsed))
	}
	frac := min(float64(done)/float64(total), 1)
	filled := int(frac * width)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	eta := "?"
	if done > 0 && elapsed > 0 {
		rest := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
		eta = rest.Round(time.Second).String()
	}
	return fmt.Sprintf("%-40s [%s] %3.0f%%  %s / %s  %s  ETA %s", name, bar, frac*100,
		sizeText(done), sizeText(total), rateText(done, elapsed), eta)
}

func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGT"[i-1])
}

func rateText(n int64, d time.Duration) string {
	if d <= 0 {
		return "- B/s"
	}
	return sizeText(int64(float64(n)/d.Seconds())) + "/s"
}

// boardHandler shows log records (retries, restarts) as permanent lines
// above the live block, so they do not tear the terminal display.
type boardHandler struct {
	b     *board
	attrs []slog.Attr
}

func (h *boardHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *boardHandler) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(strings.ToLower(r.Level.String()) + ": " + r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.b.redraw(sb.String())
	return nil
}

func (h *boardHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &boardHandler{b: h.b, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *boardHandler) WithGroup(string) slog.Handler { return h }
