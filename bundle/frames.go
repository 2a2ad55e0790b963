package bundle

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// Compression chooses how file contents are compressed.
type Compression string

// Compression policies. Auto stores large near-incompressible files
// (estimated from the byte entropy of the file's first chunk; bf16, fp16 and
// fp32 weights all qualify) as raw zstd blocks and compresses everything
// else with the default level. Store, Fast, Default and Better apply one
// level to every file.
const (
	CompressAuto    Compression = "auto"
	CompressStore   Compression = "store"
	CompressFast    Compression = "fast"
	CompressDefault Compression = "default"
	CompressBetter  Compression = "better"
)

// ParseCompression checks a policy name.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case CompressAuto, CompressStore, CompressFast, CompressDefault, CompressBetter:
		return c, nil
	case "":
		return CompressAuto, nil
	default:
		return "", fmt.Errorf("unknown compression %q (auto, store, fast, default, better)", s)
	}
}

// frameMode is how one run of the tar stream is framed.
type frameMode int

const (
	modeNone frameMode = iota
	modeStore
	modeFast
	modeDefault
	modeBetter
)

// storeRatio is the estimated compressed/original ratio above which Auto
// stores a large file. bf16 weights estimate at about 0.78 (only the
// exponent byte is skewed); zstd's literal coding reaches that ratio but
// runs at a few tens of MB/s per core here, against GB/s for storing, on
// both sides of the air gap (see docs/bundle-format.md, "Compression").
const storeRatio = 0.70

// smallFile is the size under which Auto always uses the default level:
// config, tokenizer and other text files are small and compress well.
const smallFile = 1 << 20

// chooseMode picks the frame mode for a file from the policy, its size and
// its first chunk. The choice depends only on the bytes, so it is
// deterministic.
func chooseMode(c Compression, size int64, first []byte) frameMode {
	switch c {
	case CompressStore:
		return modeStore
	case CompressFast:
		return modeFast
	case CompressDefault:
		return modeDefault
	case CompressBetter:
		return modeBetter
	}
	if size < smallFile {
		return modeDefault
	}
	if entropyRatio(first) > storeRatio {
		return modeStore
	}
	return modeDefault
}

// entropyRatio estimates the best order-0 compression ratio of p: its byte
// entropy in bits divided by 8. Weight tensors have few repeated strings, so
// order-0 entropy is what zstd's literal coding can reach on them.
func entropyRatio(p []byte) float64 {
	if len(p) == 0 {
		return 1
	}
	var hist [256]int
	for _, b := range p {
		hist[b]++
	}
	n := float64(len(p))
	var h float64
	for _, c := range hist {
		if c > 0 {
			q := float64(c) / n
			h -= q * math.Log2(q)
		}
	}
	return h / 8
}

// frameSink writes the tar stream as a sequence of zstd frames. Each run of
// bytes written under one mode becomes one frame; a decoder sees a single
// concatenated stream (RFC 8878 §3.1).
type frameSink struct {
	out     io.Writer
	mode    frameMode
	enc     *zstd.Encoder
	encs    map[frameMode]*zstd.Encoder
	raw     rawFrameWriter
	written bool // bytes written in the current frame
	workers int
}

func newFrameSink(out io.Writer, workers int) *frameSink {
	return &frameSink{out: out, encs: map[frameMode]*zstd.Encoder{}, workers: workers}
}

// encoderWindow bounds both the encoder's memory and the window a decoder
// needs (verify caps the window it accepts).
const encoderWindow = 4 << 20

func (s *frameSink) encoder(m frameMode) (*zstd.Encoder, error) {
	if e := s.encs[m]; e != nil {
		e.Reset(s.out)
		return e, nil
	}
	level := map[frameMode]zstd.EncoderLevel{
		modeFast: zstd.SpeedFastest, modeDefault: zstd.SpeedDefault, modeBetter: zstd.SpeedBetterCompression,
	}[m]
	// Concurrent block jobs split the input at fixed job boundaries, so the
	// output does not depend on the number of workers, only on these options.
	e, err := zstd.NewWriter(s.out,
		zstd.WithEncoderLevel(level),
		zstd.WithWindowSize(encoderWindow),
		zstd.WithEncoderConcurrency(max(2, s.workers)),
		zstd.WithConcurrentBlocks(true),
		zstd.WithEncoderCRC(true),
		zstd.WithAllLitEntropyCompression(true),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	s.encs[m] = e
	return e, nil
}

// SetMode ends the current frame if the mode changes.
func (s *frameSink) SetMode(m frameMode) error {
	if m == s.mode {
		return nil
	}
	if err := s.endFrame(); err != nil {
		return err
	}
	s.mode = m
	if m == modeStore {
		s.raw.reset(s.out)
		return nil
	}
	e, err := s.encoder(m)
	if err != nil {
		return err
	}
	s.enc = e
	return nil
}

func (s *frameSink) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.written = true
	if s.mode == modeStore {
		return s.raw.Write(p)
	}
	return s.enc.Write(p)
}

func (s *frameSink) endFrame() error {
	if s.mode == modeNone {
		return nil
	}
	var err error
	if s.mode == modeStore {
		if s.written {
			err = s.raw.Close()
		}
	} else {
		if s.written {
			err = s.enc.Close()
		} else {
			s.enc.Reset(io.Discard) // nothing written: emit no frame
		}
	}
	s.written = false
	s.mode = modeNone
	return err
}

// Close ends the last frame and releases the encoders.
func (s *frameSink) Close() error {
	err := s.endFrame()
	for _, e := range s.encs {
		e.Reset(io.Discard)
		_ = e.Close()
	}
	return err
}

// zstd frame constants (RFC 8878).
const (
	zstdMagic    = 0xFD2FB528
	maxRawBlock  = 128 << 10
	rawBlockType = 0
)

// rawFrameWriter writes a zstd frame made only of raw (stored) blocks, for
// data that does not compress: decoding it is a copy. Like the compressed
// frames it carries the content checksum (low 32 bits of XXH64), so a
// decoder catches any flipped byte, padding included.
type rawFrameWriter struct {
	out     io.Writer
	buf     []byte
	sum     *xxhash.Digest
	started bool
	err     error
}

func (w *rawFrameWriter) reset(out io.Writer) {
	w.out, w.started, w.err = out, false, nil
	if w.sum == nil {
		w.sum = xxhash.New()
	}
	w.sum.Reset()
	if w.buf == nil {
		w.buf = make([]byte, 3, 3+maxRawBlock)
	}
	w.buf = w.buf[:3]
}

func (w *rawFrameWriter) start() {
	// Frame header: magic, descriptor 0x04 (content checksum; no content
	// size; not single-segment), window descriptor for a 128 KiB window.
	var hdr [6]byte
	binary.LittleEndian.PutUint32(hdr[:4], zstdMagic)
	hdr[4] = 0x04
	hdr[5] = (17 - 10) << 3
	_, w.err = w.out.Write(hdr[:])
	w.started = true
}

func (w *rawFrameWriter) flushBlock(last bool) {
	if w.err != nil {
		return
	}
	n := len(w.buf) - 3
	v := uint32(n)<<3 | rawBlockType<<1
	if last {
		v |= 1
	}
	w.buf[0], w.buf[1], w.buf[2] = byte(v), byte(v>>8), byte(v>>16)
	_, _ = w.sum.Write(w.buf[3:])
	_, w.err = w.out.Write(w.buf)
	w.buf = w.buf[:3]
	if last && w.err == nil {
		var c [4]byte
		binary.LittleEndian.PutUint32(c[:], uint32(w.sum.Sum64()))
		_, w.err = w.out.Write(c[:])
	}
}

func (w *rawFrameWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.start()
	}
	n := len(p)
	for len(p) > 0 && w.err == nil {
		if len(w.buf)-3 == maxRawBlock {
			w.flushBlock(false) // more data follows, so not the last block
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
	}
	if w.err != nil {
		return 0, w.err
	}
	return n, nil
}

func (w *rawFrameWriter) Close() error {
	if !w.started {
		w.start()
	}
	w.flushBlock(true)
	return w.err
}

// rawFrame returns data as one complete raw zstd frame.
func rawFrame(data []byte) []byte {
	var w rawFrameWriter
	var out sliceWriter
	w.reset(&out)
	_, _ = w.Write(data)
	_ = w.Close()
	return out.b
}

type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
