package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// captureRun runs the CLI in-process and returns its exit code and stdout.
func captureRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	code := run(append([]string{"airlock"}, args...))
	os.Stdout = old
	_ = w.Close()
	return code, <-done
}

// smallModel writes a tiny model directory.
func smallModel(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "model")
	for p, c := range map[string]string{
		"config.json":       `{"hidden_size": 8}`,
		"tokenizer.json":    `{"model": {"vocab": {"a": 0}}}`,
		"model.safetensors": strings.Repeat("\x01\x02\x03", 5000),
	} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func minisignBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("minisign")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("minisign not installed (apt-get install -y minisign); required when CI=true")
		}
		t.Skip("minisign not installed (apt-get install -y minisign); skipping interop test")
	}
	return p
}

func TestKeygenBundleVerifyInspect(t *testing.T) {
	work := t.TempDir()
	model := smallModel(t)
	key := filepath.Join(work, "ops")
	if code, out := captureRun(t, "keygen", "--out", key, "--unencrypted"); code != exitOK || !strings.Contains(out, "key id") {
		t.Fatalf("keygen: exit %d, %q", code, out)
	}
	if st, _ := os.Stat(key + ".key"); st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", st.Mode())
	}
	if code, _ := captureRun(t, "keygen", "--out", key, "--unencrypted"); code != exitFailure {
		t.Fatalf("keygen over existing key: exit %d", code)
	}
	b := filepath.Join(work, "m.tar.zst")
	// Flags after SOURCE, as documented.
	if code, out := captureRun(t, "bundle", model, "--sign", key+".key", "--out", b, "--platforms", "none", "--created-at", "1700000000"); code != exitOK {
		t.Fatalf("bundle: exit %d, %q", code, out)
	}
	if code, _ := captureRun(t, "bundle", model, "--sign", key+".key", "--out", b, "--platforms", "none"); code != exitFailure {
		t.Fatalf("bundle over existing file: exit %d", code)
	}

	code, out := captureRun(t, "inspect", b, "--json")
	if code != exitOK {
		t.Fatalf("inspect: exit %d", code)
	}
	var ins inspectResult
	if err := json.Unmarshal([]byte(out), &ins); err != nil {
		t.Fatal(err)
	}
	if ins.Verified || len(ins.Manifest.Files) != 3 || ins.Manifest.CreatedAt.Unix() != 1700000000 {
		t.Fatalf("inspect: %+v", ins)
	}
	if code, out := captureRun(t, "inspect", "-p", key+".pub", b); code != exitOK || !strings.Contains(out, "signature verified") {
		t.Fatalf("inspect --pubkey: exit %d, %q", code, out)
	}

	inst := filepath.Join(work, "inst")
	if code, out := captureRun(t, "verify", b, "--pubkey", key+".pub", "--out", inst, "--no-sync"); code != exitOK || !strings.Contains(out, "verified") {
		t.Fatalf("verify: exit %d, %q", code, out)
	}
	if code, _ := captureRun(t, "verify", b, "--pubkey", key+".pub", "--out", inst); code != exitFailure {
		t.Fatalf("verify into existing dir: exit %d", code)
	}
	if code, _ := captureRun(t, "verify", b, "--pubkey", key+".pub", "--out", inst, "--force", "--detached"); code != exitOK {
		t.Fatalf("verify --force: exit %d", code)
	}
	if code, out := captureRun(t, "verify", inst, "-p", key+".pub"); code != exitOK || !strings.Contains(out, "matches") {
		t.Fatalf("verify DIR: exit %d, %q", code, out)
	}
	if err := os.WriteFile(filepath.Join(inst, "config.json"), []byte(`{"hidden_size": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = captureRun(t, "verify", inst, "-p", key+".pub", "--json")
	var res verifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("verify --json output %q: %v", out, err)
	}
	if code != exitFailure || res.OK || len(res.Modified) != 1 || res.Modified[0].Path != "config.json" {
		t.Fatalf("modified dir: exit %d, %+v", code, res)
	}

	// Another key is refused.
	other := filepath.Join(work, "other")
	captureRun(t, "keygen", "--out", other, "--unencrypted")
	if code, _ := captureRun(t, "verify", b, "--pubkey", other+".pub", "--out", filepath.Join(work, "x")); code != exitFailure {
		t.Fatalf("wrong key: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(work, "x")); !os.IsNotExist(err) {
		t.Fatal("refused bundle left its destination behind")
	}

	// Stock minisign checks the detached signature over the whole file.
	tool := minisignBinary(t)
	if out, err := exec.Command(tool, "-Vm", b, "-p", key+".pub").CombinedOutput(); err != nil {
		t.Fatalf("minisign -V rejects our bundle: %v\n%s", err, out)
	}
	// ... and the installed manifest's own signature.
	if out, err := exec.Command(tool, "-Vm", filepath.Join(inst, ".airlock", "manifest.json"), "-p", key+".pub").CombinedOutput(); err != nil {
		t.Fatalf("minisign -V rejects the installed manifest: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(b)
	data[len(data)/2] ^= 1
	_ = os.WriteFile(b, data, 0o644)
	if err := exec.Command(tool, "-Vm", b, "-p", key+".pub").Run(); err == nil {
		t.Fatal("minisign -V accepts a modified bundle")
	}
}

func TestMinisignGeneratedKeySigns(t *testing.T) {
	tool := minisignBinary(t)
	work := t.TempDir()
	pub, sec := filepath.Join(work, "tool.pub"), filepath.Join(work, "tool.key")
	cmd := exec.Command(tool, "-G", "-W", "-p", pub, "-s", sec)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v\n%s", err, out)
	}
	b := filepath.Join(work, "m.tar.zst")
	if code, out := captureRun(t, "bundle", smallModel(t), "--sign", sec, "--out", b, "--platforms", "none"); code != exitOK {
		t.Fatalf("bundle with a minisign -G key: exit %d %q", code, out)
	}
	if code, _ := captureRun(t, "verify", b, "--pubkey", pub, "--out", filepath.Join(work, "inst"), "--no-sync"); code != exitOK {
		t.Fatalf("verify: exit %d", code)
	}
	if out, err := exec.Command(tool, "-Vm", b, "-p", pub).CombinedOutput(); err != nil {
		t.Fatalf("minisign -V: %v\n%s", err, out)
	}
}

func TestBundleVerifyUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"verify"},
		{"verify", "x.tar.zst"},
		{"verify", "a", "b", "--pubkey", "k.pub"},
		{"verify", "x.tar.zst", "--no-such-flag"},
		{"bundle", "dir", "--out", "x.tar.zst"},
		{"bundle", "dir", "--sign", "k.key"},
		{"bundle", "dir", "--sign", "k.key", "--out", "x", "--compression", "zip"},
		{"inspect"},
		{"keygen", "extra-arg", "--out", "x"},
	} {
		if code, _ := captureRun(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	for _, name := range []string{"keygen", "bundle", "verify", "inspect"} {
		if code, out := captureRun(t, name, "--help"); code != exitOK || !strings.Contains(out, "USAGE") {
			t.Errorf("%s --help: exit %d %q", name, code, out)
		}
	}
}
