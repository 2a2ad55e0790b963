package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// component is the union of the fields used by the normalizer,
// pre_tokenizer and decoder sections of tokenizer.json.
type component struct {
	Type          string      `json:"type"`
	Normalizers   []component `json:"normalizers"`
	Pretokenizers []component `json:"pretokenizers"`
	Decoders      []component `json:"decoders"`
	Pattern       struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	} `json:"pattern"`
	Content          string `json:"content"`
	Prepend          string `json:"prepend"`
	Replacement      string `json:"replacement"`
	PrependScheme    string `json:"prepend_scheme"`
	AddPrefixSpace   *bool  `json:"add_prefix_space"`
	Split            *bool  `json:"split"`
	UseRegex         *bool  `json:"use_regex"`
	Behavior         string `json:"behavior"`
	Invert           bool   `json:"invert"`
	Start            int    `json:"start"`
	Stop             int    `json:"stop"`
	IndividualDigits bool   `json:"individual_digits"`
}

type addedTokenJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// modelHeader holds the scalar fields of tokenizer.json's "model" section.
type modelHeader struct {
	Type                    string   `json:"type"`
	Dropout                 *float64 `json:"dropout"`
	UnkToken                *string  `json:"unk_token"`
	ContinuingSubwordPrefix *string  `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string  `json:"end_of_word_suffix"`
	FuseUnk                 bool     `json:"fuse_unk"`
	ByteFallback            bool     `json:"byte_fallback"`
	IgnoreMerges            bool     `json:"ignore_merges"`
}

// tokenizerConfig holds the fields of tokenizer_config.json the tokenizer
// uses. Special-token fields may be a string, null or an AddedToken object.
type tokenizerConfig struct {
	EOSToken           json.RawMessage `json:"eos_token"`
	BOSToken           json.RawMessage `json:"bos_token"`
	PadToken           json.RawMessage `json:"pad_token"`
	UnkToken           json.RawMessage `json:"unk_token"`
	AddBOSToken        *bool           `json:"add_bos_token"`
	AddEOSToken        *bool           `json:"add_eos_token"`
	SplitSpecialTokens bool            `json:"split_special_tokens"`
}

// ConfigTokenText extracts a token's text from a tokenizer_config.json value
// (bos_token, eos_token, ...) that is either a string, null, or an object
// with a "content" field.
func ConfigTokenText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("token must be a string or an object with \"content\": %w", err)
	}
	return obj.Content, nil
}

// LoadDir loads dir/tokenizer.json and dir/tokenizer_config.json (the
// latter is optional).
func LoadDir(dir string) (*Tokenizer, error) {
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	cj, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Load(tj, cj)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer from %s: %w", dir, err)
	}
	return t, nil
}

// Load builds a Tokenizer from the contents of a Hugging Face tokenizer.json
// and, optionally (nil or empty), tokenizer_config.json.
//
// Supported: model "BPE" (merges as "a b" strings or ["a","b"] pairs,
// byte_fallback, fuse_unk, ignore_merges, unk_token); normalizers NFC, NFD,
// NFKC, NFKD, Lowercase, Prepend, Replace (string patterns), Sequence;
// pre-tokenizers ByteLevel, Metaspace, Split with the Qwen2 or Llama-3
// regular expression, Digits, Sequence; decoders ByteLevel, Metaspace,
// Replace, ByteFallback, Fuse, Strip (leading only), Sequence. Anything
// else is an error naming the unsupported component, never a silent
// approximation.
//
// As in the reference, added tokens marked "normalized" are matched in the
// normalized text, the others in the raw text. A known difference, which
// does not affect the supported Qwen and Llama files: an invalid byte
// sequence from byte_fallback tokens decodes to one U+FFFD per maximal
// invalid subpart (as the byte-level decoder does) rather than one per byte
// token.
func Load(tokenizerJSON, tokenizerConfigJSON []byte) (*Tokenizer, error) {
	t := &Tokenizer{unkID: -1}
	var (
		header                       modelHeader
		normRaw, preRaw, decRaw      []byte
		added                        []addedTokenJSON
		mergesRaw                    []byte
		sawModel, sawVocab, sawMerge bool
	)
	s := &jsonScanner{b: tokenizerJSON}
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "added_tokens":
			raw, err := s.skip()
			if err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &added); err != nil {
				return fmt.Errorf("added_tokens: %w", err)
			}
		case "normalizer":
			raw, err := s.skip()
			normRaw = raw
			return err
		case "pre_tokenizer":
			raw, err := s.skip()
			preRaw = raw
			return err
		case "decoder":
			raw, err := s.skip()
			decRaw = raw
			return err
		case "model":
			sawModel = true
			var fields []byte
			fields = append(fields, '{')
			err := s.object(func(key []byte) error {
				switch string(key) {
				case "vocab":
					sawVocab = true
					return t.readVocab(s)
				case "merges":
					// Merges need the vocabulary, which may come later.
					raw, err := s.skip()
					mergesRaw = raw
					sawMerge = true
					return err
				}
				k := string(key)
				raw, err := s.skip()
				if err != nil {
					return err
				}
				if len(fields) > 1 {
					fields = append(fields, ',')
				}
				kj, _ := json.Marshal(k)
				fields = append(fields, kj...)
				fields = append(fields, ':')
				fields = append(fields, raw...)
				return nil
			})
			if err != nil {
				return fmt.Errorf("model: %w", err)
			}
			fields = append(fields, '}')
			if err := json.Unmarshal(fields, &header); err != nil {
				return fmt.Errorf("model: %w", err)
			}
		default:
			_, err := s.skip()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	if !sawModel || !sawVocab {
		return nil, fmt.Errorf("parse tokenizer.json: no model vocabulary")
	}
	if header.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer model %q is not supported (only BPE)", header.Type)
	}
	if header.Dropout != nil && *header.Dropout > 0 {
		return nil, fmt.Errorf("BPE dropout %v is not supported (encoding must be deterministic)", *header.Dropout)
	}
	if p := header.ContinuingSubwordPrefix; p != nil && *p != "" {
		return nil, fmt.Errorf("BPE continuing_subword_prefix %q is not supported", *p)
	}
	if p := header.EndOfWordSuffix; p != nil && *p != "" {
		return nil, fmt.Errorf("BPE end_of_word_suffix %q is not supported", *p)
	}
	t.byteFallback = header.ByteFallback
	t.fuseUnk = header.FuseUnk
	t.ignoreMerges = header.IgnoreMerges

	if err := t.addTokens(added); err != nil {
		return nil, err
	}
	if header.UnkToken != nil && *header.UnkToken != "" {
		id, ok := t.TokenID(*header.UnkToken)
		if !ok {
			return nil, fmt.Errorf("unk_token %q is not in the vocabulary", *header.UnkToken)
		}
		t.unkID = id
	}
	if err := t.setupPipeline(normRaw, preRaw, decRaw); err != nil {
		return nil, err
	}
	t.setupInitialSymbols()
	if sawMerge {
		if err := t.readMerges(mergesRaw); err != nil {
			return nil, fmt.Errorf("parse tokenizer.json: merges: %w", err)
		}
	}
	if err := t.applyConfig(tokenizerConfigJSON); err != nil {
		return nil, fmt.Errorf("parse tokenizer_config.json: %w", err)
	}
	t.buildDecodeTable()
	t.cache = newWordCache(defaultCacheEntries)
	return t, nil
}

// readVocab parses the "vocab" object directly into the token tables. The
// token strings are copied into one arena string, so the 150k keys of a
// real vocabulary cost one allocation instead of one each.
func (t *Tokenizer) readVocab(s *jsonScanner) error {
	type entry struct{ off, n, id int32 }
	// Capacity hints from the file size (Qwen: 7 MB, 151k tokens of 9
	// bytes on average) avoid regrowing, which costs fresh memory.
	hint := min(len(s.b)/40, 1<<20)
	entries := make([]entry, 0, hint)
	arena := make([]byte, 0, hint*10)
	maxID := -1
	err := s.object(func(key []byte) error {
		off := len(arena)
		arena = append(arena, key...)
		id, err := s.integer()
		if err != nil {
			return fmt.Errorf("vocab %q: %w", arena[off:], err)
		}
		if id > maxVocabID {
			return fmt.Errorf("vocab %q: id %d out of range", arena[off:], id)
		}
		entries = append(entries, entry{int32(off), int32(len(arena) - off), int32(id)})
		maxID = max(maxID, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("vocab: %w", err)
	}
	all := string(arena)
	t.idToToken = make([]string, maxID+1)
	t.hasID = make([]bool, maxID+1)
	t.vocab = newVocabTable(&t.idToToken, len(entries)+64)
	for _, e := range entries {
		tok := all[e.off : e.off+e.n]
		if t.hasID[e.id] {
			return fmt.Errorf("vocab: id %d used by %q and %q", e.id, t.idToToken[e.id], tok)
		}
		t.idToToken[e.id] = tok
		t.hasID[e.id] = true
		if t.vocab.put(int(e.id)) {
			return fmt.Errorf("vocab: duplicate token %q", tok)
		}
	}
	return nil
}

// maxVocabID bounds token ids so a hostile file cannot make Load allocate
// unbounded tables.
const maxVocabID = maxIDs - 1

// readMerges parses the merge list: each merge is "left right" or
// ["left", "right"]; its rank is its position in the list. The first of
// duplicated merges wins, as in the reference.
func (t *Tokenizer) readMerges(raw []byte) error {
	s := &jsonScanner{b: raw}
	t.merges = newMergeTable(min(len(raw)/20, 1<<20))
	var (
		rank int
		left []byte
		cat  []byte
	)
	add := func(a, b []byte) error {
		la, ok := t.vocab.getBytes(a)
		if !ok {
			return fmt.Errorf("merge %d: %q is not in the vocabulary", rank, a)
		}
		lb, ok := t.vocab.getBytes(b)
		if !ok {
			return fmt.Errorf("merge %d: %q is not in the vocabulary", rank, b)
		}
		cat = append(append(cat[:0], a...), b...)
		id, ok := t.vocab.getBytes(cat)
		if !ok {
			return fmt.Errorf("merge %d: result %q is not in the vocabulary", rank, cat)
		}
		if la >= maxIDs || lb >= maxIDs || id >= maxIDs || rank >= maxIDs {
			return fmt.Errorf("merge %d: ids or rank beyond %d are not supported", rank, maxIDs)
		}
		t.merges.add(pairKey(int32(la), int32(lb)), int32(id))
		rank++
		return nil
	}
	return s.array(func() error {
		if s.peek() == '[' {
			n := 0
			err := s.array(func() error {
				str, err := s.str()
				if err != nil {
					return err
				}
				n++
				switch n {
				case 1:
					left = append(left[:0], str...)
					return nil
				case 2:
					return add(left, str)
				}
				return fmt.Errorf("merge %d: more than two parts", rank)
			})
			if err == nil && n != 2 {
				err = fmt.Errorf("merge %d: %d parts, want 2", rank, n)
			}
			return err
		}
		str, err := s.str()
		if err != nil {
			return err
		}
		sp := -1
		for i, c := range str {
			if c == ' ' {
				if sp >= 0 {
					return fmt.Errorf("merge %d: %q has more than one space", rank, str)
				}
				sp = i
			}
		}
		if sp <= 0 || sp == len(str)-1 {
			return fmt.Errorf("merge %d: %q is not \"left right\"", rank, str)
		}
		return add(str[:sp], str[sp+1:])
	})
}

func (t *Tokenizer) applyConfig(raw []byte) error {
	if len(strings.TrimSpace(string(raw))) == 0 {
		return t.setSpecials("", "", "")
	}
	var c tokenizerConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	if c.SplitSpecialTokens {
		return fmt.Errorf("split_special_tokens true is not supported")
	}
	eos, err := ConfigTokenText(c.EOSToken)
	if err != nil {
		return fmt.Errorf("eos_token: %w", err)
	}
	bos, err := ConfigTokenText(c.BOSToken)
	if err != nil {
		return fmt.Errorf("bos_token: %w", err)
	}
	pad, err := ConfigTokenText(c.PadToken)
	if err != nil {
		return fmt.Errorf("pad_token: %w", err)
	}
	if c.AddBOSToken != nil {
		t.addBOS = *c.AddBOSToken
	}
	if c.AddEOSToken != nil {
		t.addEOS = *c.AddEOSToken
	}
	return t.setSpecials(eos, bos, pad)
}

func (t *Tokenizer) setSpecials(eos, bos, pad string) error {
	t.eosID, t.bosID, t.padID = -1, -1, -1
	if eos != "" {
		id, ok := t.TokenID(eos)
		if !ok {
			return fmt.Errorf("eos_token %q is not in the vocabulary", eos)
		}
		t.eosID = id
		t.eosIDs = append(t.eosIDs, id)
	}
	if bos != "" {
		id, ok := t.TokenID(bos)
		if !ok {
			return fmt.Errorf("bos_token %q is not in the vocabulary", bos)
		}
		t.bosID = id
	}
	if pad != "" {
		if id, ok := t.TokenID(pad); ok {
			t.padID = id
		}
	}
	for _, name := range []string{"<|endoftext|>", "<|im_end|>", "</s>", "<|eot_id|>", "<|end_of_text|>"} {
		id, ok := t.TokenID(name)
		if !ok || !t.IsSpecial(id) {
			continue
		}
		dup := false
		for _, e := range t.eosIDs {
			dup = dup || e == id
		}
		if !dup {
			t.eosIDs = append(t.eosIDs, id)
		}
	}
	return nil
}
