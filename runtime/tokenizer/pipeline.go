package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites the text between added tokens before pre-tokenization.
type normalizer interface {
	normalize(s string, first bool) string
}

type normForm struct{ f norm.Form }

func (n normForm) normalize(s string, _ bool) string {
	if n.f == norm.NFC {
		return nfcString(s)
	}
	if n.f.IsNormalString(s) {
		return s
	}
	return n.f.String(s)
}

type lowercase struct{}

func (lowercase) normalize(s string, _ bool) string { return strings.ToLower(s) }

type prepend struct{ prefix string }

func (p prepend) normalize(s string, _ bool) string {
	if s == "" {
		return s
	}
	return p.prefix + s
}

type replace struct{ old, new string }

func (r replace) normalize(s string, _ bool) string { return strings.ReplaceAll(s, r.old, r.new) }

// splitter is a pre-tokenizer step: it splits one piece into words,
// appending them to dst.
type splitter interface {
	split(dst []string, s string, first bool) []string
}

func (q *regexSplitter) split(dst []string, s string, _ bool) []string {
	for i := 0; i < len(s); {
		j := q.next(s, i)
		dst = append(dst, s[i:j])
		i = j
	}
	return dst
}

// prefixSpace is ByteLevel's add_prefix_space: a space before each piece
// that does not start with one.
type prefixSpace struct{}

func (prefixSpace) split(dst []string, s string, _ bool) []string {
	if s != "" && s[0] != ' ' {
		s = " " + s
	}
	return append(dst, s)
}

// metaspace replaces spaces with a marker (normally U+2581 "▁"), optionally
// prepends it, and optionally splits before each marker.
type metaspace struct {
	repl          string
	prependScheme string // "always", "first" or "never"
	split_        bool
}

func (m metaspace) split(dst []string, s string, first bool) []string {
	s = strings.ReplaceAll(s, " ", m.repl)
	if (m.prependScheme == "always" || (m.prependScheme == "first" && first)) && !strings.HasPrefix(s, m.repl) {
		s = m.repl + s
	}
	if !m.split_ {
		return append(dst, s)
	}
	start := 0
	for {
		k := strings.Index(s[start+1:], m.repl)
		if start >= len(s) || k < 0 {
			break
		}
		end := start + 1 + k
		dst = append(dst, s[start:end])
		start = end
	}
	if start < len(s) {
		dst = append(dst, s[start:])
	}
	return dst
}

// digits isolates ASCII digits: each alone, or each run of digits.
type digits struct{ individual bool }

func (d digits) split(dst []string, s string, _ bool) []string {
	isD := func(c byte) bool { return c >= '0' && c <= '9' }
	for i := 0; i < len(s); {
		j := i + 1
		switch {
		case isD(s[i]) && d.individual:
		case isD(s[i]):
			for j < len(s) && isD(s[j]) {
				j++
			}
		default:
			for j < len(s) && !isD(s[j]) {
				j++
			}
		}
		dst = append(dst, s[i:j])
		i = j
	}
	return dst
}

// decoderChain is the supported subset of tokenizer.json decoders, reduced
// to per-token byte strings plus a leading strip.
type decoderChain struct {
	byteLevel    bool
	replaces     []replace
	byteFallback bool
	stripChar    rune // strip up to stripCount leading stripChar from the text
	stripCount   int
}

func (t *Tokenizer) setupPipeline(normRaw, preRaw, decRaw []byte) error {
	if len(normRaw) > 0 && string(normRaw) != "null" {
		var c component
		if err := json.Unmarshal(normRaw, &c); err != nil {
			return fmt.Errorf("normalizer: %w", err)
		}
		if err := t.addNormalizer(c); err != nil {
			return fmt.Errorf("normalizer: %w", err)
		}
	}
	if len(preRaw) > 0 && string(preRaw) != "null" {
		var c component
		if err := json.Unmarshal(preRaw, &c); err != nil {
			return fmt.Errorf("pre_tokenizer: %w", err)
		}
		if err := t.addPreTokenizer(c); err != nil {
			return fmt.Errorf("pre_tokenizer: %w", err)
		}
	}
	if len(decRaw) > 0 && string(decRaw) != "null" {
		var c component
		if err := json.Unmarshal(decRaw, &c); err != nil {
			return fmt.Errorf("decoder: %w", err)
		}
		if err := t.addDecoder(c); err != nil {
			return fmt.Errorf("decoder: %w", err)
		}
	}
	return nil
}

func (t *Tokenizer) addNormalizer(c component) error {
	switch c.Type {
	case "Sequence":
		for _, n := range c.Normalizers {
			if err := t.addNormalizer(n); err != nil {
				return err
			}
		}
	case "NFC":
		t.normalizers = append(t.normalizers, normForm{norm.NFC})
	case "NFD":
		t.normalizers = append(t.normalizers, normForm{norm.NFD})
	case "NFKC":
		t.normalizers = append(t.normalizers, normForm{norm.NFKC})
	case "NFKD":
		t.normalizers = append(t.normalizers, normForm{norm.NFKD})
	case "Lowercase":
		t.normalizers = append(t.normalizers, lowercase{})
	case "Prepend":
		t.normalizers = append(t.normalizers, prepend{c.Prepend})
	case "Replace":
		if c.Pattern.String == nil {
			return fmt.Errorf("Replace with a regex pattern is not supported")
		}
		t.normalizers = append(t.normalizers, replace{*c.Pattern.String, c.Content})
	default:
		return fmt.Errorf("normalizer type %q is not supported", c.Type)
	}
	return nil
}

func (t *Tokenizer) addPreTokenizer(c component) error {
	switch c.Type {
	case "Sequence":
		for _, p := range c.Pretokenizers {
			if err := t.addPreTokenizer(p); err != nil {
				return err
			}
		}
	case "Split":
		if c.Pattern.Regex == nil {
			return fmt.Errorf("Split with a string pattern is not supported")
		}
		if c.Behavior != "Isolated" || c.Invert {
			return fmt.Errorf("Split behavior %q (invert %v) is not supported", c.Behavior, c.Invert)
		}
		q, ok := knownRegex[*c.Pattern.Regex]
		if !ok {
			return fmt.Errorf("Split regex %q is not a known pre-tokenizer pattern (Qwen2, Llama-3, GPT-2)", *c.Pattern.Regex)
		}
		t.splitters = append(t.splitters, q)
	case "ByteLevel":
		t.byteLevel = true
		if c.AddPrefixSpace != nil && *c.AddPrefixSpace {
			t.splitters = append(t.splitters, prefixSpace{})
		}
		if c.UseRegex == nil || *c.UseRegex {
			t.splitters = append(t.splitters, knownRegex[gpt2Pattern])
		}
	case "Metaspace":
		m := metaspace{repl: c.Replacement, prependScheme: c.PrependScheme, split_: c.Split == nil || *c.Split}
		if m.repl == "" {
			m.repl = "▁"
		}
		if m.prependScheme == "" {
			m.prependScheme = "always"
			if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
				m.prependScheme = "never"
			}
		}
		switch m.prependScheme {
		case "always", "first", "never":
		default:
			return fmt.Errorf("Metaspace prepend_scheme %q is not supported", m.prependScheme)
		}
		t.splitters = append(t.splitters, m)
	case "Digits":
		t.splitters = append(t.splitters, digits{c.IndividualDigits})
	default:
		return fmt.Errorf("pre-tokenizer type %q is not supported", c.Type)
	}
	return nil
}

func (t *Tokenizer) addDecoder(c component) error {
	d := &t.decoders
	switch c.Type {
	case "Sequence":
		for _, x := range c.Decoders {
			if err := t.addDecoder(x); err != nil {
				return err
			}
		}
	case "ByteLevel":
		d.byteLevel = true
	case "Replace":
		if c.Pattern.String == nil {
			return fmt.Errorf("Replace with a regex pattern is not supported")
		}
		d.replaces = append(d.replaces, replace{*c.Pattern.String, c.Content})
	case "ByteFallback":
		d.byteFallback = true
	case "Fuse":
	case "Strip":
		if c.Stop != 0 {
			return fmt.Errorf("Strip decoder with stop %d is not supported", c.Stop)
		}
		r, n := utf8.DecodeRuneInString(c.Content)
		if n != len(c.Content) || n == 0 {
			return fmt.Errorf("Strip decoder content %q is not one character", c.Content)
		}
		d.stripChar, d.stripCount = r, c.Start
	case "Metaspace":
		repl := c.Replacement
		if repl == "" {
			repl = "▁"
		}
		d.replaces = append(d.replaces, replace{repl, " "})
		scheme := c.PrependScheme
		if scheme == "" && c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
			scheme = "never"
		}
		if scheme != "never" {
			d.stripChar, d.stripCount = ' ', 1
		}
	default:
		return fmt.Errorf("decoder type %q is not supported", c.Type)
	}
	return nil
}

// addTokens registers tokenizer.json's added_tokens.
func (t *Tokenizer) addTokens(list []addedTokenJSON) error {
	t.special = make(map[int]bool)
	for _, a := range list {
		if a.ID < 0 || a.ID > maxVocabID {
			return fmt.Errorf("added token %q: id %d out of range", a.Content, a.ID)
		}
		if a.Content == "" {
			return fmt.Errorf("added token %d has empty content", a.ID)
		}
		for a.ID >= len(t.idToToken) {
			t.idToToken = append(t.idToToken, "")
			t.hasID = append(t.hasID, false)
		}
		if t.hasID[a.ID] && t.idToToken[a.ID] != a.Content {
			return fmt.Errorf("added token %q: id %d is already %q", a.Content, a.ID, t.idToToken[a.ID])
		}
		t.idToToken[a.ID] = a.Content
		t.hasID[a.ID] = true
		t.vocab.put(a.ID)
		if a.Special {
			t.special[a.ID] = true
		}
		tok := addedToken{
			id: a.ID, content: a.Content, singleWord: a.SingleWord,
			lstrip: a.LStrip, rstrip: a.RStrip, special: a.Special,
		}
		t.added = append(t.added, tok)
		if a.Normalized {
			t.normAdded.add(tok)
		} else {
			t.rawAdded.add(tok)
		}
	}
	return nil
}

// byteLevelAlphabet maps each byte to the character GPT-2's byte-level BPE
// uses for it: printable Latin-1 bytes map to themselves, the other 68 to
// U+0100 onwards in byte order.
var byteLevelAlphabet = func() (tab [256]rune) {
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174 {
			tab[b] = rune(b)
		} else {
			tab[b] = 256 + n
			n++
		}
	}
	return tab
}()

// byteLevelInverse maps byte-level characters (all below U+0144) back to bytes;
// -1 for characters outside the alphabet.
var byteLevelInverse = func() (inv [324]int16) {
	for i := range inv {
		inv[i] = -1
	}
	for b, r := range byteLevelAlphabet {
		inv[r] = int16(b)
	}
	return inv
}()

// setupInitialSymbols fills byteIDs: the token of each single byte.
func (t *Tokenizer) setupInitialSymbols() {
	var buf [8]byte
	for b := 0; b < 256; b++ {
		t.byteIDs[b] = -1
		var key string
		switch {
		case t.byteLevel:
			key = string(utf8.AppendRune(buf[:0], byteLevelAlphabet[b]))
		case t.byteFallback:
			key = fmt.Sprintf("<0x%02X>", b)
		default:
			continue
		}
		if id, ok := t.vocab.get(key); ok {
			t.byteIDs[b] = int32(id)
		}
	}
}

// buildDecodeTable precomputes the bytes each id decodes to.
func (t *Tokenizer) buildDecodeTable() {
	isAdded := make(map[int]bool, len(t.added))
	for _, a := range t.added {
		isAdded[a.id] = true
	}
	t.decodeOff = make([]uint32, len(t.idToToken)+1)
	size := 0
	for _, tok := range t.idToToken {
		size += len(tok) // an upper bound for the supported decoders
	}
	buf := make([]byte, 0, size)
	for id, tok := range t.idToToken {
		t.decodeOff[id] = uint32(len(buf))
		switch {
		case !t.hasID[id]:
		case isAdded[id]:
			buf = append(buf, tok...)
		default:
			buf = t.decoders.appendTokenBytes(buf, tok)
		}
	}
	t.decodeOff[len(t.idToToken)] = uint32(len(buf))
	t.decodeBuf = buf
}

// appendTokenBytes appends the bytes one vocabulary token decodes to.
func (d *decoderChain) appendTokenBytes(dst []byte, tok string) []byte {
	if d.byteLevel {
		start := len(dst)
		for _, r := range tok {
			if r >= 0 && int(r) < len(byteLevelInverse) && byteLevelInverse[r] >= 0 {
				dst = append(dst, byte(byteLevelInverse[r]))
				continue
			}
			// Not in the alphabet: raw UTF-8, as the reference does.
			return append(dst[:start], tok...)
		}
		return dst
	}
	if d.byteFallback && len(tok) == 6 && strings.HasPrefix(tok, "<0x") && tok[5] == '>' {
		if hi, ok := hexVal(tok[3]); ok {
			if lo, ok := hexVal(tok[4]); ok {
				return append(dst, hi<<4|lo)
			}
		}
	}
	for _, r := range d.replaces {
		tok = strings.ReplaceAll(tok, r.old, r.new)
	}
	return append(dst, tok...)
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
