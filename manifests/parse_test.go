package manifests

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func validManifest() *Manifest {
	return &Manifest{
		FormatVersion: FormatVersion,
		Name:          "tiny",
		CreatedAt:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Source:        Source{Kind: "local", ID: "tiny-qwen2"},
		Tool:          Tool{Name: "airlock", Version: "dev"},
		Files: []File{
			{Path: "bin/linux-amd64/airlock", Size: 3, SHA256: strings.Repeat("a", 64), Role: RoleRuntime, Platform: "linux/amd64"},
			{Path: "config.json", Size: 0, SHA256: strings.Repeat("0", 64), Role: RoleConfig},
			{Path: "model.safetensors", Size: 10, SHA256: strings.Repeat("b", 64), Role: RoleWeights, UpstreamRevision: "abc"},
		},
	}
}

func TestEncodeParseRoundTrip(t *testing.T) {
	m := validManifest()
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Encode(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("re-encoding changed the bytes:\n%s\n%s", b, b2)
	}
	if got.TotalSize() != 13 || got.Lookup("config.json") == nil || got.Lookup("nope") != nil {
		t.Fatalf("TotalSize/Lookup wrong: %d", got.TotalSize())
	}
}

func TestValidateRefuses(t *testing.T) {
	cases := map[string]struct {
		edit func(m *Manifest)
		want string
	}{
		"version":          {func(m *Manifest) { m.FormatVersion = 2 }, "format_version 2"},
		"no name":          {func(m *Manifest) { m.Name = "" }, "missing name"},
		"name newline":     {func(m *Manifest) { m.Name = "a\nb" }, "non-printable"},
		"no created":       {func(m *Manifest) { m.CreatedAt = time.Time{} }, "created_at"},
		"absolute":         {func(m *Manifest) { m.Files[1].Path = "/etc/passwd" }, "absolute path"},
		"dotdot":           {func(m *Manifest) { m.Files[1].Path = "a/../../x" }, `".." element`},
		"dot":              {func(m *Manifest) { m.Files[1].Path = "./x" }, `"." element`},
		"empty element":    {func(m *Manifest) { m.Files[1].Path = "a//b" }, "empty path element"},
		"trailing slash":   {func(m *Manifest) { m.Files[1].Path = "cz/" }, "empty path element"},
		"backslash":        {func(m *Manifest) { m.Files[1].Path = `c\x` }, "backslash"},
		"drive":            {func(m *Manifest) { m.Files[1].Path = "c:x" }, "drive letter"},
		"control":          {func(m *Manifest) { m.Files[1].Path = "c\x00x" }, "non-printable"},
		"reserved":         {func(m *Manifest) { m.Files[1].Path = ".airlock/manifest.json" }, "reserved"},
		"reserved case":    {func(m *Manifest) { m.Files[1].Path = ".AIRLOCK/x" }, "reserved"},
		"negative size":    {func(m *Manifest) { m.Files[1].Size = -1 }, "negative size"},
		"short sha":        {func(m *Manifest) { m.Files[1].SHA256 = "abc" }, "sha256"},
		"upper sha":        {func(m *Manifest) { m.Files[1].SHA256 = strings.Repeat("A", 64) }, "sha256"},
		"nonhex sha":       {func(m *Manifest) { m.Files[1].SHA256 = strings.Repeat("g", 64) }, "sha256"},
		"role":             {func(m *Manifest) { m.Files[1].Role = "evil" }, "unknown role"},
		"platform":         {func(m *Manifest) { m.Files[0].Platform = "linux" }, "os/arch"},
		"runtime platform": {func(m *Manifest) { m.Files[0].Platform = "" }, "without a platform"},
		"duplicate":        {func(m *Manifest) { m.Files[2].Path = "config.json" }, "listed twice"},
		"unsorted":         {func(m *Manifest) { m.Files[0], m.Files[2] = m.Files[2], m.Files[0] }, "sorted order"},
		"case collision": {func(m *Manifest) {
			m.Files[2].Path = "config.jsoN"
			m.Files[1], m.Files[2] = m.Files[2], m.Files[1]
		}, "only in case"},
		"file is dir": {func(m *Manifest) {
			m.Files[2].Path = "config.json/x"
		}, "also a file"},
		"overflow": {func(m *Manifest) { m.Files[1].Size = 1 << 62; m.Files[2].Size = 1 << 62 }, "total size"},
	}
	for name, c := range cases {
		m := validManifest()
		c.edit(m)
		err := m.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good, _ := Encode(validManifest())
	cases := map[string]string{
		"not json":       "{",
		"no version":     `{"name":"x"}`,
		"future version": `{"format_version":99}`,
		"unknown field":  strings.Replace(string(good), `"name"`, `"extra":1,"name"`, 1),
		"trailing":       string(good) + "{}",
		"bad utf8":       string(good[:10]) + "\xff" + string(good[10:]),
		"too big":        strings.Repeat(" ", MaxManifestSize+1),
	}
	for name, in := range cases {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Encode(validManifest())
	f.Add(good)
	f.Add([]byte(`{"format_version":1}`))
	f.Add([]byte(`{"format_version":1,"name":"x","files":[{"path":"../x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		// Anything accepted must re-encode, re-parse to the same bytes and
		// hold only safe paths.
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("accepted manifest does not encode: %v", err)
		}
		m2, err := Parse(b)
		if err != nil {
			t.Fatalf("canonical form rejected: %v", err)
		}
		b2, _ := Encode(m2)
		if !bytes.Equal(b, b2) {
			t.Fatal("canonical form not stable")
		}
		for _, f := range m.Files {
			if CheckPath(f.Path) != nil || strings.Contains(f.Path, "..") && CheckPath(f.Path) != nil {
				t.Fatalf("unsafe path accepted: %q", f.Path)
			}
		}
	})
}
