package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Character classes used by the pre-tokenizer regexes.
const (
	clsL  = 1 << iota // \p{L}
	clsN              // \p{N}
	clsS              // \s: the White_Space property (unicode.IsSpace)
	clsNL             // \r or \n
)

// bmpClass holds the class bits of every Basic Multilingual Plane code point.
var bmpClass = func() *[0x10000]uint8 {
	var tab [0x10000]uint8
	mark := func(rt *unicode.RangeTable, bit uint8) {
		for _, r := range rt.R16 {
			for c := int(r.Lo); c <= int(r.Hi); c += int(r.Stride) {
				tab[c] |= bit
			}
		}
		for _, r := range rt.R32 {
			for c := int(r.Lo); c <= int(r.Hi) && c < len(tab); c += int(r.Stride) {
				tab[c] |= bit
			}
		}
	}
	mark(unicode.L, clsL)
	mark(unicode.N, clsN)
	mark(unicode.White_Space, clsS)
	tab['\r'] |= clsNL
	tab['\n'] |= clsNL
	return &tab
}()

func class(r rune) uint8 {
	if r < 0x10000 {
		return bmpClass[r]
	}
	var c uint8
	if unicode.IsLetter(r) {
		c |= clsL
	}
	if unicode.IsNumber(r) {
		c |= clsN
	}
	return c // no White_Space character lies outside the BMP
}

func isSpace(r rune) bool          { return class(r)&clsS != 0 }
func isNumber(r rune) bool         { return class(r)&clsN != 0 }
func isLetterOrNumber(r rune) bool { return class(r)&(clsL|clsN) != 0 }

// decodeRune is utf8.DecodeRuneInString with an ASCII fast path; s[i:] must
// be non-empty valid UTF-8.
func decodeRune(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// regexSplitter implements one of the known pre-tokenizer regexes as a
// scanner. Its next method returns the end of the match starting at i; the
// known patterns match every non-empty input, so splitting with behavior
// Isolated is the sequence of successive matches.
type regexSplitter struct {
	gpt2      bool // GPT-2 pattern instead of the Qwen2/Llama-3 family
	maxDigits int  // \p{N} (1) or \p{N}{1,3} (3)
}

// Known Split patterns, exactly as they appear in tokenizer.json files.
const (
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	gpt2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

var knownRegex = map[string]*regexSplitter{
	qwen2Pattern:  {maxDigits: 1},
	llama3Pattern: {maxDigits: 3},
	gpt2Pattern:   {gpt2: true},
}

// contraction returns the length of a contraction suffix ('s 't 're 've 'm
// 'll 'd without the apostrophe) at s[i:], or 0. With fold, letters match
// case-insensitively under Unicode simple case folding (ſ U+017F folds to s).
func contraction(s string, i int, fold bool) int {
	if i >= len(s) {
		return 0
	}
	lower := func(c byte) byte {
		if fold && c >= 'A' && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	c := lower(s[i])
	switch c {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v', 'l':
		if i+1 < len(s) {
			want := byte('e')
			if c == 'l' {
				want = 'l'
			}
			if lower(s[i+1]) == want {
				return 2
			}
		}
	case 0xC5: // ſ is C5 BF
		if fold && i+1 < len(s) && s[i+1] == 0xBF {
			return 2
		}
	}
	return 0
}

// next returns the end of the regex match that starts at i (i < len(s)).
func (q *regexSplitter) next(s string, i int) int {
	if q.gpt2 {
		return q.nextGPT2(s, i)
	}
	r0, n0 := decodeRune(s, i)
	c0 := class(r0)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if r0 == '\'' {
		if n := contraction(s, i+1, true); n > 0 {
			return i + 1 + n
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c0&clsL != 0 {
		return scanClass(s, i+n0, clsL)
	}
	if c0&(clsN|clsNL) == 0 && i+n0 < len(s) {
		if r1, n1 := decodeRune(s, i+n0); class(r1)&clsL != 0 {
			return scanClass(s, i+n0+n1, clsL)
		}
	}
	// \p{N} or \p{N}{1,3}
	if c0&clsN != 0 {
		j := i + n0
		for k := 1; k < q.maxDigits && j < len(s); k++ {
			r, n := decodeRune(s, j)
			if class(r)&clsN == 0 {
				break
			}
			j += n
		}
		return j
	}
	// ' '?[^\s\p{L}\p{N}]+[\r\n]*
	if j, ok := punctRun(s, i, r0, c0); ok {
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// Here r0 is whitespace. Find the maximal whitespace run i..end, the
	// end of its last \r or \n, and the start of its last character.
	end, lastNL, lastStart := i, -1, i
	for end < len(s) {
		r, n := decodeRune(s, end)
		c := class(r)
		if c&clsS == 0 {
			break
		}
		if c&clsNL != 0 {
			lastNL = end + n
		}
		lastStart = end
		end += n
	}
	if end == i { // unreachable for valid classes; guarantees progress
		return i + n0
	}
	// \s*[\r\n]+
	if lastNL >= 0 {
		return lastNL
	}
	// \s+(?!\S), then \s+
	return wsEnd(s, i, end, lastStart)
}

// wsEnd resolves \s+(?!\S)|\s+ for the whitespace run s[i:end] whose last
// character starts at lastStart.
func wsEnd(s string, i, end, lastStart int) int {
	if end == len(s) || lastStart == i {
		return end
	}
	return lastStart
}

// punctRun matches ' '?[^\s\p{L}\p{N}]+ at i and returns its end.
func punctRun(s string, i int, r0 rune, c0 uint8) (int, bool) {
	const notPunct = clsL | clsN | clsS
	j := i
	if r0 == ' ' {
		if i+1 >= len(s) {
			return 0, false
		}
		r1, _ := decodeRune(s, i+1)
		if class(r1)&notPunct != 0 {
			return 0, false
		}
		j = i + 1
	} else if c0&notPunct != 0 {
		return 0, false
	}
	for j < len(s) {
		r, n := decodeRune(s, j)
		if class(r)&notPunct != 0 {
			break
		}
		j += n
	}
	return j, true
}

// scanClass returns the end of the run of characters of class cls from j.
func scanClass(s string, j int, cls uint8) int {
	for j < len(s) {
		r, n := decodeRune(s, j)
		if class(r)&cls == 0 {
			break
		}
		j += n
	}
	return j
}

// nextGPT2 implements 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+.
func (q *regexSplitter) nextGPT2(s string, i int) int {
	r0, n0 := decodeRune(s, i)
	c0 := class(r0)
	if r0 == '\'' {
		if n := contraction(s, i+1, false); n > 0 {
			return i + 1 + n
		}
	}
	j, c := i, c0
	if r0 == ' ' && i+1 < len(s) {
		r1, _ := decodeRune(s, i+1)
		if c1 := class(r1); c1&(clsL|clsN) != 0 {
			j, c = i+1, c1
		}
	}
	if c&clsL != 0 {
		return scanClass(s, j, clsL)
	}
	if c&clsN != 0 {
		return scanClass(s, j, clsN)
	}
	if e, ok := punctRun(s, i, r0, c0); ok {
		return e
	}
	end, lastStart := i, i
	for end < len(s) {
		r, n := decodeRune(s, end)
		if class(r)&clsS == 0 {
			break
		}
		lastStart = end
		end += n
	}
	if end == i { // unreachable for valid classes; guarantees progress
		return i + n0
	}
	return wsEnd(s, i, end, lastStart)
}
