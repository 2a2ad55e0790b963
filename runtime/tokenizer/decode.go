package tokenizer

import (
	"unicode/utf8"
)

// Decode returns the text of ids, including special tokens (as the reference
// does with skip_special_tokens=false). Byte sequences that are not valid
// UTF-8 become U+FFFD, one per maximal invalid subpart (as Rust's
// String::from_utf8_lossy); unknown ids are skipped.
func (t *Tokenizer) Decode(ids []int) string {
	var raw []byte
	for _, id := range ids {
		raw = append(raw, t.idBytes(id)...)
	}
	out := appendLossy(nil, raw, true)
	return string(t.stripLeading(out, nil))
}

// DecodeSkipSpecial is Decode without the special tokens.
func (t *Tokenizer) DecodeSkipSpecial(ids []int) string {
	kept := make([]int, 0, len(ids))
	for _, id := range ids {
		if !t.special[id] {
			kept = append(kept, id)
		}
	}
	return t.Decode(kept)
}

func (t *Tokenizer) idBytes(id int) []byte {
	if id < 0 || id+1 >= len(t.decodeOff) {
		return nil
	}
	return t.decodeBuf[t.decodeOff[id]:t.decodeOff[id+1]]
}

// stripLeading applies a Strip decoder to the start of the text. state, if
// non-nil, carries across calls how many characters were stripped so far
// (-1 once stripping is over).
func (t *Tokenizer) stripLeading(b []byte, state *int) []byte {
	n := t.decoders.stripCount
	if n == 0 {
		return b
	}
	var local int
	if state == nil {
		state = &local
	}
	for *state >= 0 && len(b) > 0 {
		if *state >= n {
			*state = -1
			break
		}
		r, size := utf8.DecodeRune(b)
		if r != t.decoders.stripChar {
			*state = -1
			break
		}
		b = b[size:]
		*state++
	}
	return b
}

// appendLossy appends b to dst as valid UTF-8; each maximal invalid subpart
// becomes U+FFFD.
func appendLossy(dst, b []byte, final bool) []byte {
	out, _ := lossy(dst, b, final)
	return out
}

// lossy converts b as appendLossy does and reports how many bytes of b were
// consumed. Unless final, a trailing incomplete but so far valid sequence is
// left unconsumed, since the next bytes may complete it.
func lossy(dst, b []byte, final bool) ([]byte, int) {
	i := 0
	for i < len(b) {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			dst = append(dst, b[i:i+size]...)
			i += size
			continue
		}
		// Invalid or incomplete: find the maximal subpart of a valid sequence.
		need, lo, hi := seqInfo(c)
		k := 1
		if need > 0 {
			for k < need && i+k < len(b) {
				x := b[i+k]
				if k == 1 {
					if x < lo || x > hi {
						break
					}
				} else if x < 0x80 || x > 0xBF {
					break
				}
				k++
			}
			if !final && i+k == len(b) && k < need {
				return dst, i // may still complete
			}
		}
		dst = append(dst, "\uFFFD"...)
		i += k
	}
	return dst, i
}

// seqInfo returns the length of the UTF-8 sequence a lead byte starts and
// the valid range of its second byte; need is 0 for bytes that cannot start
// a sequence.
func seqInfo(c byte) (need int, lo, hi byte) {
	switch {
	case c >= 0xC2 && c <= 0xDF:
		return 2, 0x80, 0xBF
	case c == 0xE0:
		return 3, 0xA0, 0xBF
	case c == 0xED:
		return 3, 0x80, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		return 3, 0x80, 0xBF
	case c == 0xF0:
		return 4, 0x90, 0xBF
	case c >= 0xF1 && c <= 0xF3:
		return 4, 0x80, 0xBF
	case c == 0xF4:
		return 4, 0x80, 0x8F
	}
	return 0, 0, 0
}

// StreamDecoder turns a stream of token ids into text incrementally. It
// returns only complete, valid UTF-8: bytes of a character split across
// tokens are held back until it is complete. The concatenation of all Push
// results and the final Flush equals Decode of all ids. A StreamDecoder is
// not safe for concurrent use; use one per generation.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte
	strip   int
	out     []byte
}

// NewStreamDecoder returns a decoder for one stream of ids.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{t: t}
}

// Push adds one id and returns the text it completes (possibly "").
func (d *StreamDecoder) Push(id int) string {
	d.pending = append(d.pending, d.t.idBytes(id)...)
	return d.emit(false)
}

// Flush returns any held-back bytes (an incomplete character becomes
// U+FFFD) and resets the decoder for reuse.
func (d *StreamDecoder) Flush() string {
	s := d.emit(true)
	d.pending = d.pending[:0]
	d.strip = 0
	return s
}

func (d *StreamDecoder) emit(final bool) string {
	out, used := lossy(d.out[:0], d.pending, final)
	n := copy(d.pending, d.pending[used:])
	d.pending = d.pending[:n]
	d.out = out[:0]
	out = d.t.stripLeading(out, &d.strip)
	return string(out)
}
