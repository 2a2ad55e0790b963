// Package tokenizer implements the Hugging Face "tokenizers" BPE tokenizers
// used by Qwen2-family (byte-level BPE, NFC, the Qwen2 pre-tokenizer regex)
// and Llama-2-family (SentencePiece-style BPE with byte_fallback and
// Metaspace) models, reading tokenizer.json and tokenizer_config.json.
//
// Encoding matches the reference library with add_special_tokens=false and
// split_special_tokens=false: added tokens are matched in the raw text first
// (leftmost, longest), the text between them is normalized, split by the
// pre-tokenizer and encoded with BPE; nothing (no BOS/EOS) is added.
//
// The Qwen2 pre-tokenizer regex
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// needs a lookahead, which Go's regexp lacks, so it is implemented as a
// hand-written scanner with the same leftmost-alternative semantics, using
// Unicode letters (\p{L}), numbers (\p{N}) and White_Space (unicode.IsSpace).
//
// A Tokenizer is immutable after loading and safe for concurrent use.
//
// Performance: BPE merges are looked up by pair of ids in an open-addressing
// table, short words use a linear merge loop and long ones a priority queue,
// and a bounded word cache serves repeated words. Measure with
//
//	go test -run X -bench 'Mixed|Baseline|LoadQwen' -cpu 1 -count 6 ./runtime/tokenizer
//
// which encodes about 1 MB of mixed Chinese/English text (with and without
// the word cache), loads the 7 MB Qwen tokenizer.json, and reports cpu-MB/s
// (throughput per CPU-second of the benchmark thread) besides wall-clock MB/s.
package tokenizer

import (
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer encodes text to token ids and decodes ids to text.
type Tokenizer struct {
	vocab     *vocabTable // token string as written in tokenizer.json → id
	idToToken []string    // id → token string (vocabulary and added tokens)
	hasID     []bool      // whether an id is assigned
	decodeBuf []byte      // the bytes of all ids, concatenated
	decodeOff []uint32    // id → its bytes: decodeBuf[decodeOff[id]:decodeOff[id+1]]

	merges       *mergeTable // pair of ids → merge rank → merged id
	byteLevel    bool        // byte-level alphabet (GPT-2/Qwen style)
	byteIDs      [256]int32  // byte-level: id of each byte; byte_fallback: id of <0xNN>; -1 if none
	byteFallback bool
	fuseUnk      bool
	ignoreMerges bool
	unkID        int

	added     []addedToken // all added tokens
	rawAdded  addedSet     // added tokens matched in the raw text
	normAdded addedSet     // added tokens marked "normalized": matched after normalization
	special   map[int]bool

	normalizers []normalizer
	splitters   []splitter
	decoders    decoderChain

	eosID, bosID, padID int
	eosIDs              []int
	addBOS, addEOS      bool

	cache *wordCache
}

type addedToken struct {
	id                         int
	content                    string
	singleWord, lstrip, rstrip bool
	special                    bool
}

// VocabSize returns one more than the largest token id (vocabulary and added
// tokens), i.e. the number of rows an embedding table needs at least.
func (t *Tokenizer) VocabSize() int { return len(t.idToToken) }

// TokenID returns the id of a token given as written in tokenizer.json (for
// byte-level vocabularies that is the byte-level alphabet, e.g. "Ġworld"),
// or of an added token given by its content (e.g. "<|im_end|>").
func (t *Tokenizer) TokenID(s string) (int, bool) {
	return t.vocab.get(s)
}

// Token returns the token string of id as written in tokenizer.json, or ""
// and false if id is not assigned.
func (t *Tokenizer) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.idToToken) || !t.hasID[id] {
		return "", false
	}
	return t.idToToken[id], true
}

// IsSpecial reports whether id is an added token marked special (for Qwen:
// <|endoftext|>, <|im_start|>, <|im_end|>).
func (t *Tokenizer) IsSpecial(id int) bool { return t.special[id] }

// EOSID returns the id of tokenizer_config.json's eos_token.
func (t *Tokenizer) EOSID() (int, bool) { return t.eosID, t.eosID >= 0 }

// BOSID returns the id of tokenizer_config.json's bos_token.
func (t *Tokenizer) BOSID() (int, bool) { return t.bosID, t.bosID >= 0 }

// PadID returns the id of tokenizer_config.json's pad_token.
func (t *Tokenizer) PadID() (int, bool) { return t.padID, t.padID >= 0 }

// AddBOS reports whether tokenizer_config.json asks for a BOS token before
// encoded prompts (add_bos_token, Llama style). Encode never adds it; callers
// that encode a raw prompt prepend BOSID themselves when this is true.
func (t *Tokenizer) AddBOS() bool { return t.addBOS && t.bosID >= 0 }

// EOSIDs returns the ids that end generation: eos_token first, then whichever
// of <|endoftext|>, <|im_end|>, </s>, <|eot_id|>, <|end_of_text|> exist as
// special tokens. The slice is a copy.
func (t *Tokenizer) EOSIDs() []int { return append([]int(nil), t.eosIDs...) }

// IsEOS reports whether id is one of EOSIDs.
func (t *Tokenizer) IsEOS(id int) bool {
	for _, e := range t.eosIDs {
		if e == id {
			return true
		}
	}
	return false
}

// Encode returns the token ids of text. Added tokens are recognised anywhere
// in the raw text; the rest is normalized, pre-tokenized and BPE-encoded.
// Invalid UTF-8 is first replaced by U+FFFD (one per invalid run), so for any
// input Decode(Encode(s)) equals the normalized (for Qwen: NFC) form of
// strings.ToValidUTF8(s, "\uFFFD").
func (t *Tokenizer) Encode(text string) []int {
	return t.AppendEncode(make([]int, 0, len(text)/3+1), text)
}

// AppendEncode appends the token ids of text to dst and returns the result.
func (t *Tokenizer) AppendEncode(dst []int, text string) []int {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	first := true
	for len(text) > 0 {
		start, end, tok := t.rawAdded.find(text)
		if tok == nil {
			dst = t.encodeSegment(dst, text, first)
			break
		}
		if start > 0 {
			dst = t.encodeSegment(dst, text[:start], first)
		}
		dst = append(dst, tok.id)
		first = false
		text = text[end:]
	}
	return dst
}

// addedSet is a group of added tokens matched together, longest first.
type addedSet struct {
	tokens []addedToken
	first  [256]bool // whether some token starts with this byte
}

func (set *addedSet) add(a addedToken) {
	set.tokens = append(set.tokens, a)
	set.first[a.content[0]] = true
	sort.SliceStable(set.tokens, func(i, j int) bool { return len(set.tokens[i].content) > len(set.tokens[j].content) })
}

// find returns the leftmost-longest match in s as the byte range to remove
// (including whitespace taken by lstrip/rstrip).
func (set *addedSet) find(s string) (start, end int, tok *addedToken) {
	if len(set.tokens) == 0 {
		return 0, 0, nil
	}
	for i := 0; i < len(s); i++ {
		if !set.first[s[i]] {
			continue
		}
		for k := range set.tokens {
			a := &set.tokens[k] // sorted longest first
			if !strings.HasPrefix(s[i:], a.content) {
				continue
			}
			e := i + len(a.content)
			if a.singleWord && (isWordBefore(s, i) || isWordAfter(s, e)) {
				continue
			}
			b := i
			if a.lstrip {
				b = len(strings.TrimRightFunc(s[:b], isSpace))
			}
			if a.rstrip {
				e = len(s) - len(strings.TrimLeftFunc(s[e:], isSpace))
			}
			return b, e, a
		}
	}
	return 0, 0, nil
}

func isWordRune(r rune) bool { return r == '_' || isLetterOrNumber(r) }

func isWordBefore(s string, i int) bool {
	if i == 0 {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return isWordRune(r)
}

func isWordAfter(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isWordRune(r)
}

// encodeSegment encodes text between raw-matched added tokens: it is
// normalized, then split at added tokens marked "normalized" (as the
// reference does), and each piece is pre-tokenized and BPE-encoded. first
// is true for the segment at the very start of the input (Metaspace
// "first").
func (t *Tokenizer) encodeSegment(dst []int, s string, first bool) []int {
	for _, n := range t.normalizers {
		s = n.normalize(s, first)
	}
	for len(s) > 0 && len(t.normAdded.tokens) > 0 {
		start, end, tok := t.normAdded.find(s)
		if tok == nil {
			break
		}
		dst = t.encodePiece(dst, s[:start], first)
		dst = append(dst, tok.id)
		first = false
		s = s[end:]
	}
	return t.encodePiece(dst, s, first)
}

// encodePiece pre-tokenizes and BPE-encodes normalized text.
func (t *Tokenizer) encodePiece(dst []int, s string, first bool) []int {
	if s == "" {
		return dst
	}
	switch len(t.splitters) {
	case 0:
		return t.bpe(dst, s)
	case 1:
		if q, ok := t.splitters[0].(*regexSplitter); ok {
			// Fast path for byte-level Qwen/Llama-3 tokenizers.
			for i := 0; i < len(s); {
				j := q.next(s, i)
				dst = t.bpe(dst, s[i:j])
				i = j
			}
			return dst
		}
	}
	words := []string{s}
	var next []string
	for _, sp := range t.splitters {
		next = next[:0]
		for _, w := range words {
			next = sp.split(next, w, first)
		}
		words, next = next, words
	}
	for _, w := range words {
		dst = t.bpe(dst, w)
	}
	return dst
}

// nfcString is norm.NFC.String with a fast path for text that is already
// normalized.
func nfcString(s string) string {
	if norm.NFC.IsNormalString(s) {
		return s
	}
	return norm.NFC.String(s)
}
