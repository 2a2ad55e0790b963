package tokenizer

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonScanner is a minimal, allocation-light JSON reader used to load the
// large parts of tokenizer.json (the vocabulary and the merge list) without
// building a generic value tree. Small sections are captured as raw bytes and
// handed to encoding/json.
type jsonScanner struct {
	b   []byte
	i   int
	buf []byte // scratch for strings with escapes
}

var errUnexpectedEOF = errors.New("unexpected end of JSON input")

func (s *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("JSON offset %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it (0 at EOF).
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *jsonScanner) expect(c byte) error {
	s.ws()
	if s.i >= len(s.b) {
		return s.errorf("expected %q: %v", c, errUnexpectedEOF)
	}
	if s.b[s.i] != c {
		return s.errorf("expected %q, found %q", c, s.b[s.i])
	}
	s.i++
	return nil
}

// str reads a JSON string and returns its decoded bytes. The returned slice
// aliases either the input or an internal scratch buffer; it is valid only
// until the next call.
func (s *jsonScanner) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			out := s.b[start:s.i]
			s.i++
			return out, nil
		}
		if c == '\\' {
			return s.strSlow(start)
		}
		if c < 0x20 {
			return nil, s.errorf("control character in string")
		}
		s.i++
	}
	return nil, s.errorf("unterminated string")
}

func (s *jsonScanner) strSlow(start int) ([]byte, error) {
	s.buf = append(s.buf[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.buf, nil
		case c < 0x20:
			return nil, s.errorf("control character in string")
		case c != '\\':
			s.buf = append(s.buf, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, s.errorf("unterminated escape")
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			s.buf = append(s.buf, e)
		case 'b':
			s.buf = append(s.buf, '\b')
		case 'f':
			s.buf = append(s.buf, '\f')
		case 'n':
			s.buf = append(s.buf, '\n')
		case 'r':
			s.buf = append(s.buf, '\r')
		case 't':
			s.buf = append(s.buf, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, s.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					if lo, ok := s.hex4(); ok {
						if d := utf16.DecodeRune(r, lo); d != utf8.RuneError {
							r2 = d
						} else {
							s.i = save
						}
					} else {
						s.i = save
					}
				}
				r = r2
			}
			s.buf = utf8.AppendRune(s.buf, r)
		default:
			return nil, s.errorf("bad escape \\%c", e)
		}
	}
	return nil, s.errorf("unterminated string")
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// integer reads a non-negative JSON integer.
func (s *jsonScanner) integer() (int, error) {
	s.ws()
	start := s.i
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		if n > (1<<31)/10 {
			return 0, s.errorf("integer too large")
		}
		n = n*10 + int(s.b[s.i]-'0')
		s.i++
	}
	if s.i == start {
		return 0, s.errorf("expected a non-negative integer")
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, s.errorf("expected an integer")
	}
	return n, nil
}

// skip consumes one JSON value of any kind and returns its raw bytes.
func (s *jsonScanner) skip() ([]byte, error) {
	s.ws()
	start := s.i
	depth := 0
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch c {
		case '"':
			if _, err := s.str(); err != nil {
				return nil, err
			}
		case '{', '[':
			depth++
			s.i++
		case '}', ']':
			depth--
			s.i++
			if depth < 0 {
				return nil, s.errorf("unbalanced %q", c)
			}
		case ' ', '\t', '\n', '\r', ',', ':':
			s.i++
		default:
			if depth == 0 {
				// A scalar at top level: read to its end.
				for s.i < len(s.b) {
					switch s.b[s.i] {
					case ',', '}', ']', ' ', '\t', '\n', '\r':
						return s.b[start:s.i], nil
					}
					s.i++
				}
				return s.b[start:s.i], nil
			}
			s.i++
		}
		if depth == 0 {
			return s.b[start:s.i], nil
		}
	}
	return nil, s.errorf("%v", errUnexpectedEOF)
}

// object iterates over the members of a JSON object, calling fn with each
// key; fn must consume the member's value.
func (s *jsonScanner) object(fn func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errorf("expected ',' or '}' in object")
		}
	}
}

// array iterates over the elements of a JSON array; fn must consume each.
func (s *jsonScanner) array(fn func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errorf("expected ',' or ']' in array")
		}
	}
}
