package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log is closed")

// maxBatch bounds how many records one group commit writes.
const maxBatch = 512

// Options configure a Writer.
type Options struct {
	// MaxBytes rotates the active file before a write would make it larger
	// than this many bytes; 0 disables rotation. A single record larger than
	// MaxBytes still goes into a file of its own.
	MaxBytes int64
}

// Writer appends hash-chained records to an audit log file and makes each
// durable (write + fsync, batched across concurrent callers) before Append
// returns. It rotates the file by size, continuing the chain in the next
// file. It is safe for concurrent use.
type Writer struct {
	path string
	opts Options

	mu     sync.RWMutex // guards closed and sends on reqs
	closed bool
	reqs   chan *pending
	done   chan struct{}

	lock *os.File // advisory lock on PATH.lock, nil where unsupported

	// Owned by the commit loop (and Open before it starts).
	f        *os.File
	size     int64
	nextSeq  uint64
	prev     string
	rotation int   // highest rotated-file number in use
	err      error // sticky write error

	headMu   sync.Mutex
	headSeq  uint64
	headHash string
	written  uint64
}

type pending struct {
	rec  *Record
	done chan error
}

// Open opens (or creates) the audit log at path for appending. It continues
// the chain from the last record of path, or of the newest rotated file
// (path.N) when path is empty or absent. A log whose last line is incomplete
// is refused: it must be inspected with Verify and moved aside first, so a
// torn or truncated record is never hidden behind new ones.
func Open(path string, opts Options) (*Writer, error) {
	w := &Writer{path: path, opts: opts, prev: GenesisPrev, reqs: make(chan *pending, maxBatch), done: make(chan struct{})}
	lock, err := lockLog(path)
	if err != nil {
		return nil, err
	}
	w.lock = lock
	ok := false
	defer func() {
		if !ok && lock != nil {
			lock.Close()
		}
	}()
	rotated, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	if len(rotated) > 0 {
		w.rotation = rotated[len(rotated)-1].n
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	w.f, w.size = f, st.Size()
	tailFile, tailSize := f, st.Size()
	if tailSize == 0 && len(rotated) > 0 {
		last := rotated[len(rotated)-1].path
		rf, err := os.Open(last)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open audit log: %w", err)
		}
		defer rf.Close()
		rst, err := rf.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open audit log: %w", err)
		}
		tailFile, tailSize = rf, rst.Size()
	}
	if tailSize > 0 {
		line, err := lastLine(tailFile, tailSize)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open audit log %s: %w", tailFile.Name(), err)
		}
		var hdr recordHeader
		if err := json.Unmarshal(line, &hdr); err != nil || hdr.Seq == nil {
			f.Close()
			return nil, fmt.Errorf("open audit log %s: last record is malformed; run `airlock audit verify` and move the file aside", tailFile.Name())
		}
		w.nextSeq = *hdr.Seq + 1
		w.prev = LineHash(line)
		w.headSeq, w.headHash = *hdr.Seq, w.prev
	}
	ok = true
	go w.loop()
	return w, nil
}

// Path returns the active file's path.
func (w *Writer) Path() string { return w.path }

// Append writes rec as the next record of the chain and returns once it is
// on stable storage. It sets rec.V, rec.Seq and rec.Prev.
func (w *Writer) Append(rec *Record) error {
	p := &pending{rec: rec, done: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	w.reqs <- p
	w.mu.RUnlock()
	return <-p.done
}

// Head returns the sequence number and chain hash of the last durable
// record (hash is empty for an empty log). Publishing it out of band lets an
// auditor detect removal of records at the end of the log.
func (w *Writer) Head() (seq uint64, hash string) {
	w.headMu.Lock()
	defer w.headMu.Unlock()
	return w.headSeq, w.headHash
}

// Written returns how many records this Writer has made durable.
func (w *Writer) Written() uint64 {
	w.headMu.Lock()
	defer w.headMu.Unlock()
	return w.written
}

// Close waits for pending records to become durable and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	close(w.reqs)
	w.mu.Unlock()
	<-w.done
	err := w.f.Close()
	if w.lock != nil {
		w.lock.Close()
	}
	if w.err != nil {
		return w.err
	}
	if err != nil {
		return fmt.Errorf("close audit log: %w", err)
	}
	return nil
}

func (w *Writer) loop() {
	defer close(w.done)
	batch := make([]*pending, 0, maxBatch)
	var buf bytes.Buffer
	for p := range w.reqs {
		batch = append(batch[:0], p)
	drain:
		for len(batch) < maxBatch {
			select {
			case q, ok := <-w.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, q)
			default:
				break drain
			}
		}
		err := w.commit(batch, &buf)
		for _, q := range batch {
			q.done <- err
		}
	}
}

// commit writes batch as one group: encode, write, fsync, rotating when the
// file would outgrow MaxBytes.
func (w *Writer) commit(batch []*pending, buf *bytes.Buffer) error {
	if w.err != nil {
		return w.err
	}
	buf.Reset()
	seq, prev := w.nextSeq, w.prev
	for _, p := range batch {
		p.rec.V, p.rec.Seq, p.rec.Prev = FormatVersion, seq, prev
		line, err := json.Marshal(p.rec)
		if err != nil {
			// Only unencodable params can fail; record that instead.
			p.rec.Params = map[string]any{"unencodable": err.Error()}
			if line, err = json.Marshal(p.rec); err != nil {
				return fmt.Errorf("encode audit record: %w", err)
			}
		}
		if w.opts.MaxBytes > 0 && w.size+int64(buf.Len()) > 0 &&
			w.size+int64(buf.Len()+len(line)+1) > w.opts.MaxBytes {
			if err := w.flush(buf); err != nil {
				return err
			}
			buf.Reset()
			if err := w.rotate(); err != nil {
				w.err = err
				return err
			}
		}
		buf.Write(line)
		buf.WriteByte('\n')
		prev = LineHash(line)
		seq++
		w.nextSeq, w.prev = seq, prev
	}
	if err := w.flush(buf); err != nil {
		return err
	}
	w.headMu.Lock()
	w.headSeq, w.headHash = seq-1, prev
	w.written += uint64(len(batch))
	w.headMu.Unlock()
	return nil
}

func (w *Writer) flush(buf *bytes.Buffer) error {
	if buf.Len() == 0 {
		return nil
	}
	n, err := w.f.Write(buf.Bytes())
	w.size += int64(n)
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		w.err = fmt.Errorf("write audit log %s: %w", w.path, err)
		return w.err
	}
	return nil
}

// rotate renames the active file to path.N+1 and starts a new active file.
func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("rotate audit log: %w", err)
	}
	w.rotation++
	dst := w.path + "." + strconv.Itoa(w.rotation)
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("rotate audit log: %s already exists", dst)
	}
	if err := os.Rename(w.path, dst); err != nil {
		return fmt.Errorf("rotate audit log: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("rotate audit log: %w", err)
	}
	w.f, w.size = f, 0
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		return fmt.Errorf("rotate audit log: %w", err)
	}
	return nil
}

type rotatedFile struct {
	path string
	n    int
}

// rotatedFiles lists path.N files, oldest (smallest N) first.
func rotatedFiles(path string) ([]rotatedFile, error) {
	matches, err := filepath.Glob(globEscape(path) + ".*")
	if err != nil {
		return nil, fmt.Errorf("list rotated audit logs: %w", err)
	}
	var out []rotatedFile
	for _, m := range matches {
		suffix := strings.TrimPrefix(m, path+".")
		n, err := strconv.Atoi(suffix)
		if err != nil || n <= 0 || strconv.Itoa(n) != suffix {
			continue
		}
		out = append(out, rotatedFile{m, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	return out, nil
}

// Files returns the files of the log whose active file is path, in chain
// order: rotated files path.1, path.2, ... then path itself (if present).
func Files(path string) ([]string, error) {
	rotated, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rotated {
		out = append(out, r.path)
	}
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("audit log %s: %w", path, os.ErrNotExist)
	}
	return out, nil
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) && goruntime.GOOS != "windows" {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// lastLine returns the last complete line of f (without its newline). It
// fails when the file does not end with a newline.
func lastLine(f *os.File, size int64) ([]byte, error) {
	var one [1]byte
	if _, err := f.ReadAt(one[:], size-1); err != nil {
		return nil, err
	}
	if one[0] != '\n' {
		return nil, errors.New("the last record is incomplete (torn write or truncation); run `airlock audit verify` and move the file aside")
	}
	const chunk = 64 << 10
	end := size - 1
	var tail []byte
	for pos := end; pos > 0; {
		start := max(pos-chunk, 0)
		b := make([]byte, pos-start)
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		tail = append(b, tail...)
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return tail[i+1:], nil
		}
		pos = start
	}
	return tail, nil
}

func syncDir(dir string) error {
	if goruntime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// recordHeader holds the chain fields of a record.
type recordHeader struct {
	V    int     `json:"v"`
	Seq  *uint64 `json:"seq"`
	Prev *string `json:"prev"`
}
