package safetensors

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func image(header string, data []byte) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		img  []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "too short"},
		{"huge-header", image("", nil)[:0:0], "too short"},
		{"header-past-end", append([]byte{0xff, 0xff, 0, 0, 0, 0, 0, 0}, "{}"...), "exceeds"},
		{"bad-json", image("{", nil), "header"},
		{"dtype", image(`{"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), "unsupported dtype"},
		{"offsets", image(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), "outside"},
		{"size", image(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)), "want 12"},
		{"negative", image(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, nil), "bad shape"},
		{"reversed", image(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 4)), "outside"},
		{"misaligned", image(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}`, make([]byte, 8)), "aligned"},
	}
	for _, tc := range cases {
		if _, err := Parse(tc.img); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestWriteOpenRoundTrip(t *testing.T) {
	dir := t.TempDir()
	vals := []float32{1, -2.5, 0.15625, 3e-5, 65504, -0}
	raw := func(dt DType) []byte {
		var b bytes.Buffer
		for _, v := range vals {
			switch dt {
			case BF16:
				_ = binary.Write(&b, binary.LittleEndian, F32ToBF16(v))
			case F16:
				_ = binary.Write(&b, binary.LittleEndian, F32ToF16(v))
			default:
				_ = binary.Write(&b, binary.LittleEndian, v)
			}
		}
		return b.Bytes()
	}
	var ts []WriteTensor
	for _, dt := range []DType{BF16, F16, F32} {
		data := raw(dt)
		ts = append(ts, WriteTensor{Name: "t." + string(dt), DType: dt, Shape: []int{2, 3},
			Write: func(w io.Writer) error { _, err := w.Write(data); return err }})
	}
	path := filepath.Join(dir, SingleFile)
	if err := WriteFile(path, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []Mode{Mmap, Heap} {
		var seen int64
		s, err := OpenDir(dir, Options{Mode: mode, Progress: func(n int64) { seen += n }})
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(path)
		if seen != st.Size() {
			t.Errorf("progress reported %d bytes of %d", seen, st.Size())
		}
		if s.Metadata()["format"] != "pt" || len(s.Names()) != 3 {
			t.Fatalf("metadata %v names %v", s.Metadata(), s.Names())
		}
		for _, dt := range []DType{BF16, F16, F32} {
			tt, ok := s.Tensor("t." + string(dt))
			if !ok || tt.Elements() != 6 {
				t.Fatalf("%s: tensor %+v", dt, tt)
			}
			got := tt.Float32s()
			for i, v := range vals {
				want := v
				if dt == BF16 {
					want = math.Float32frombits(uint32(F32ToBF16(v)) << 16)
				} else if dt == F16 {
					want = F16ToF32(F32ToF16(v))
				}
				if got[i] != want {
					t.Errorf("%s[%d] = %v, want %v", dt, i, got[i], want)
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestF16Conversions(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			if back := F32ToF16(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back := F32ToF16(f); back != uint16(h) {
			t.Fatalf("f16 %#04x → %v → %#04x", h, f, back)
		}
	}
	if F16ToF32(0x3c00) != 1 || F16ToF32(0x0001) != float32(math.Ldexp(1, -24)) || F32ToF16(1e6) != 0x7c00 {
		t.Fatal("f16 anchors")
	}
	// Ties to even: 1 + 2^-11 lies halfway between 1 and the next half.
	if F32ToF16(1+float32(math.Ldexp(1, -11))) != 0x3c00 {
		t.Fatal("f16 rounding is not ties-to-even")
	}
	if F32ToBF16(1+float32(math.Ldexp(1, -8))) != 0x3f80 || F32ToBF16(1+float32(math.Ldexp(1, -7))) != 0x3f81 {
		t.Fatal("bf16 rounding")
	}
}

func TestShardIndex(t *testing.T) {
	dir := t.TempDir()
	if _, err := Files(dir); err == nil {
		t.Fatal("empty directory accepted")
	}
	for _, idx := range []string{`{"weight_map":{"a":"../x.safetensors"}}`, `{"weight_map":{}}`, `{`} {
		if err := os.WriteFile(filepath.Join(dir, IndexFile), []byte(idx), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenDir(dir, Options{}); err == nil {
			t.Errorf("index %s accepted", idx)
		}
	}
	// The same tensor in two shards is an error.
	one := func(name string) {
		data := make([]byte, 4)
		err := WriteFile(filepath.Join(dir, name), []WriteTensor{{Name: "w", DType: F32, Shape: []int{1},
			Write: func(w io.Writer) error { _, err := w.Write(data); return err }}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	one("a.safetensors")
	one("b.safetensors")
	_ = os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"weight_map":{"w":"a.safetensors","v":"b.safetensors"}}`), 0o644)
	if _, err := OpenDir(dir, Options{}); err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Fatalf("duplicate tensor: %v", err)
	}
}

// FuzzParse checks that no header, however malformed, panics the parser
// or yields a tensor outside the file.
func FuzzParse(f *testing.F) {
	f.Add(image(`{"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}`, make([]byte, 8)))
	f.Add(image(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add(image(`{"__metadata__":{"x":1}}`, nil))
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	f.Fuzz(func(t *testing.T, img []byte) {
		sf, err := Parse(img)
		if err != nil {
			return
		}
		for _, n := range sf.Names() {
			tt, _ := sf.Tensor(n)
			if int64(len(tt.Data)) != int64(tt.Elements())*int64(tt.DType.Size()) {
				t.Fatalf("tensor %q: %d bytes for %d elements", n, len(tt.Data), tt.Elements())
			}
			_ = tt.Float32s()
		}
	})
}
