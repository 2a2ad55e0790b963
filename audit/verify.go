package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxLineBytes bounds one record line when verifying.
const MaxLineBytes = 64 << 20

// Problem kinds reported by Verify.
const (
	KindEdited    = "edited"    // a record's bytes changed after it was written
	KindDeleted   = "deleted"   // records are missing
	KindInserted  = "inserted"  // a record that does not belong to the chain
	KindReordered = "reordered" // records are out of order
	KindTruncated = "truncated" // the log ends mid-record or before the anchor
	KindMalformed = "malformed" // a line is not a valid record
)

// ChainError describes the first place where a log breaks its chain.
type ChainError struct {
	Kind   string // one of the Kind constants
	File   string // file holding the offending line
	Line   int    // 1-based line number in File
	Seq    uint64 // sequence number the chain expected at this point
	Detail string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("%s:%d: %s record (expected seq %d): %s", e.File, e.Line, e.Kind, e.Seq, e.Detail)
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Head, if set, is the chain hash the log must end with (an anchor
	// published out of band, see Writer.Head). It catches records removed
	// from the end of the log.
	Head string
	// AllowPartialStart accepts a log whose first record is not the chain's
	// first (older rotated files were archived); the chain is checked from
	// there on.
	AllowPartialStart bool
}

// Report summarizes a verified log.
type Report struct {
	Files    []string
	Records  uint64
	FirstSeq uint64
	LastSeq  uint64
	Head     string // chain hash of the last record
}

type seenRecord struct {
	file string
	line int
	seq  uint64
}

// Verify checks the hash chain across files, given in chain order (use
// Files to list a rotated log). It returns a *ChainError naming the first
// edited, deleted, inserted, reordered, truncated or malformed record.
func Verify(files []string, opts VerifyOptions) (Report, error) {
	rep := Report{Files: files}
	v := verifier{opts: opts, rep: &rep, prev: GenesisPrev}
	for _, name := range files {
		if err := v.file(name); err != nil {
			return rep, err
		}
	}
	return v.finish(files)
}

// finish applies the end-of-input checks.
func (v *verifier) finish(files []string) (Report, error) {
	rep, opts := *v.rep, v.opts
	if v.pendingErr != nil {
		return rep, v.pendingErr
	}
	if rep.Records == 0 {
		return rep, fmt.Errorf("audit log %v: no records", files)
	}
	if opts.Head != "" && opts.Head != rep.Head {
		return rep, &ChainError{Kind: KindTruncated, File: files[len(files)-1], Line: v.lastLine + 1, Seq: v.next,
			Detail: fmt.Sprintf("the log ends at seq %d with hash %s, not at the anchored hash %s: records were removed from the end or the last record was edited", rep.LastSeq, rep.Head, opts.Head)}
	}
	return rep, nil
}

type verifier struct {
	opts     VerifyOptions
	rep      *Report
	prev     string
	next     uint64
	started  bool
	lastLine int
	lastFile string
	// pendingErr is a seq-mismatch error being classified by looking ahead.
	pendingErr *ChainError
	ahead      []seenRecord
}

func (v *verifier) file(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("verify audit log: %w", err)
	}
	defer f.Close()
	return v.reader(name, f)
}

// reader checks the records read from rd, named name in errors.
func (v *verifier) reader(name string, rd io.Reader) error {
	r := bufio.NewReaderSize(rd, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return v.finishFile()
		}
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, bufio.ErrBufferFull) {
				return &ChainError{Kind: KindMalformed, File: name, Line: lineNo, Seq: v.next, Detail: "line longer than the record size limit"}
			}
			return fmt.Errorf("verify audit log %s: %w", name, err)
		}
		if errors.Is(err, io.EOF) { // data without a final newline
			if v.pendingErr != nil {
				return v.pendingErr
			}
			return &ChainError{Kind: KindTruncated, File: name, Line: lineNo, Seq: v.next,
				Detail: "the last line has no newline: the file was truncated or a write was torn"}
		}
		if cerr := v.record(name, lineNo, line); cerr != nil {
			return cerr
		}
	}
}

// readLine reads one '\n'-terminated line, without the newline, up to
// MaxLineBytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := r.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > MaxLineBytes {
			return nil, bufio.ErrBufferFull
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return out, err
		}
		return out[:len(out)-1], nil
	}
}

// finishFile ends one file; a pending seq mismatch carries on into the next.
func (v *verifier) finishFile() error { return nil }

func (v *verifier) record(name string, lineNo int, line []byte) error {
	var hdr recordHeader
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&hdr); err != nil || hdr.Seq == nil || hdr.Prev == nil || hdr.V != FormatVersion || dec.More() {
		if v.pendingErr != nil {
			return v.pendingErr
		}
		detail := "not a valid audit record"
		if len(bytes.TrimSpace(line)) == 0 {
			detail = "empty line"
		}
		return &ChainError{Kind: KindMalformed, File: name, Line: lineNo, Seq: v.next, Detail: detail}
	}
	seq, prev := *hdr.Seq, *hdr.Prev
	if v.pendingErr != nil {
		v.ahead = append(v.ahead, seenRecord{name, lineNo, seq})
		return v.classifyAhead()
	}
	switch {
	case !v.started:
		v.started = true
		if seq != 0 || prev != GenesisPrev {
			if !v.opts.AllowPartialStart {
				return &ChainError{Kind: KindDeleted, File: name, Line: lineNo, Seq: 0,
					Detail: fmt.Sprintf("the log starts at seq %d: earlier records or files are missing (pass the older rotated files, or allow a partial start)", seq)}
			}
		}
		v.rep.FirstSeq = seq
	case seq == v.next && prev == v.prev:
		// in order
	case seq == v.next:
		return &ChainError{Kind: KindEdited, File: v.lastFile, Line: v.lastLine, Seq: v.next - 1,
			Detail: fmt.Sprintf("its hash does not match the prev field of the next record (%s:%d): this record or that link was edited", name, lineNo)}
	default:
		if prev == v.prev {
			return &ChainError{Kind: KindEdited, File: name, Line: lineNo, Seq: v.next,
				Detail: fmt.Sprintf("it links to the previous record but its seq was changed to %d", seq)}
		}
		// A seq mismatch: deleted, inserted or reordered. Look ahead to tell.
		v.pendingErr = &ChainError{File: name, Line: lineNo, Seq: v.next}
		v.ahead = append(v.ahead[:0], seenRecord{name, lineNo, seq})
		return v.classifyAhead()
	}
	v.prev = LineHash(line)
	v.next = seq + 1
	v.lastLine, v.lastFile = lineNo, name
	v.rep.Records++
	v.rep.LastSeq = seq
	v.rep.Head = v.prev
	return nil
}

// classifyAhead decides the kind of a pending seq mismatch once enough of
// the following records have been seen. It returns nil while undecided
// (the caller keeps feeding records) and the error once decided; at end of
// input the pending error is returned as deleted.
func (v *verifier) classifyAhead() error {
	e := v.pendingErr
	first := v.ahead[0]
	last := v.ahead[len(v.ahead)-1]
	switch {
	case first.seq < e.Seq:
		e.Kind = KindInserted
		e.Detail = fmt.Sprintf("found seq %d, which the chain already passed: a duplicated or inserted record", first.seq)
		return e
	case last.seq == e.Seq:
		e.Kind = KindReordered
		e.Detail = fmt.Sprintf("found seq %d here; seq %d appears later at %s:%d", first.seq, e.Seq, last.file, last.line)
		return e
	case len(v.ahead) >= 4096 || last.seq > first.seq+4096:
		e.Kind = KindDeleted
		e.Detail = fmt.Sprintf("found seq %d: records %d..%d are missing", first.seq, e.Seq, first.seq-1)
		return e
	}
	// Provisional verdict, returned at end of input if nothing better shows.
	e.Kind = KindDeleted
	e.Detail = fmt.Sprintf("found seq %d: records %d..%d are missing", first.seq, e.Seq, first.seq-1)
	if first.seq == e.Seq+1 {
		e.Detail = fmt.Sprintf("found seq %d: record %d is missing", first.seq, e.Seq)
	}
	return nil
}
