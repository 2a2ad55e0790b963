package signing

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

// testCost keeps scrypt cheap in tests; the format stores the cost, so
// decryption exercises the same code as with DefaultKeyCost.
var testCost = KeyCost{Ops: 1 << 15, Mem: 1 << 24}

func TestEncryptedKeyRoundTrip(t *testing.T) {
	pubText, privText, err := GenerateKeyCost([]byte("hunter2"), testCost)
	if err != nil {
		t.Fatal(err)
	}
	if !minisign.IsEncrypted(privText) {
		t.Fatal("key with a password is not encrypted")
	}
	pub, err := ParsePublicKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePrivateKey(privText, nil); !errors.Is(err, ErrPasswordRequired) {
		t.Fatalf("no password: err = %v, want ErrPasswordRequired", err)
	}
	if _, err := ParsePrivateKey(privText, []byte("hunter3")); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: err = %v, want ErrWrongPassword", err)
	}
	priv, err := ParsePrivateKey(privText, []byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	if priv.ID() != pub.ID() {
		t.Fatalf("key ids differ: %x vs %x", priv.ID(), pub.ID())
	}
	// The reference implementation decrypts our encoding too.
	ref, err := minisign.DecryptKey("hunter2", privText)
	if err != nil {
		t.Fatalf("aead.dev/minisign cannot decrypt our key: %v", err)
	}
	if !ref.Equal(priv) {
		t.Fatal("reference decryption gives a different key")
	}
}

func TestSignVerify(t *testing.T) {
	pubText, privText, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := ParsePublicKey(pubText)
	priv, err := ParsePrivateKey(privText, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("the bytes that crossed the air gap")
	sig, err := Sign(priv, msg, "timestamp:1\tfile:x", UntrustedComment(priv.ID()))
	if err != nil {
		t.Fatal(err)
	}
	sig2, _ := Sign(priv, msg, "timestamp:1\tfile:x", UntrustedComment(priv.ID()))
	if !bytes.Equal(sig, sig2) {
		t.Fatal("signing is not deterministic")
	}
	s, err := Verify(pub, msg, sig)
	if err != nil {
		t.Fatal(err)
	}
	if s.TrustedComment != "timestamp:1\tfile:x" {
		t.Fatalf("trusted comment %q", s.TrustedComment)
	}
	// The reference implementation accepts it.
	if !minisign.Verify(pub, msg, sig) {
		t.Fatal("aead.dev/minisign rejects our signature")
	}
	if _, err := VerifyReader(pub, bytes.NewReader(msg), sig); err != nil {
		t.Fatal(err)
	}

	flipped := append([]byte(nil), msg...)
	flipped[3] ^= 1
	if _, err := Verify(pub, flipped, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("flipped message: err = %v", err)
	}
	forged := bytes.Replace(sig, []byte("timestamp:1"), []byte("timestamp:2"), 1)
	if _, err := Verify(pub, msg, forged); err == nil || !strings.Contains(err.Error(), "trusted comment") {
		t.Fatalf("forged trusted comment: err = %v", err)
	}
	otherPubText, _, _ := GenerateKey(nil)
	other, _ := ParsePublicKey(otherPubText)
	var wk *WrongKeyError
	if _, err := Verify(other, msg, sig); !errors.As(err, &wk) {
		t.Fatalf("wrong key: err = %v", err)
	}
	if _, err := Verify(pub, msg, []byte("garbage")); err == nil {
		t.Fatal("garbage signature accepted")
	}
	if _, err := Sign(priv, msg, "a\nb", ""); !errors.Is(err, ErrCommentNewline) {
		t.Fatalf("newline in comment: err = %v", err)
	}
	legacy := minisign.SignWithComments(priv, msg, "t", "u")
	if _, err := Verify(pub, msg, legacy); err == nil {
		t.Fatal("legacy signature accepted")
	}
}

func TestRejectsMalformedKeys(t *testing.T) {
	for name, text := range map[string]string{
		"empty":     "",
		"not b64":   "untrusted comment: x\n!!!!\n",
		"too short": "untrusted comment: x\nRWQ=\n",
	} {
		if _, err := ParsePrivateKey([]byte(text), nil); err == nil {
			t.Errorf("%s: private key accepted", name)
		}
		if _, err := ParsePublicKey([]byte(text)); err == nil {
			t.Errorf("%s: public key accepted", name)
		}
	}
	// A corrupt unencrypted key (flipped secret byte) is caught at load.
	_, privText, _ := GenerateKey(nil)
	b, _ := decodeKeyFile(privText)
	b[70] ^= 0xff
	var k minisign.PrivateKey
	if err := k.UnmarshalText([]byte(b64(b))); err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePrivateKey([]byte(b64(b)), nil); err == nil {
		t.Fatal("corrupt private key accepted")
	}
	// A key file demanding more than libsodium's limits is refused.
	_, enc, _ := GenerateKeyCost([]byte("pw"), testCost)
	b, _ = decodeKeyFile(enc)
	b[46+7] = 0x10
	if _, err := ParsePrivateKey([]byte(b64(b)), []byte("pw")); err == nil || !strings.Contains(err.Error(), "limits") {
		t.Fatalf("hostile scrypt cost: err = %v", err)
	}
}

// minisignTool returns the path of the stock minisign binary, failing under
// CI (where .ci/run installs it) and skipping elsewhere.
func minisignTool(t *testing.T) string {
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

func TestInteropWithMinisignTool(t *testing.T) {
	tool := minisignTool(t)
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(tool, args...)
		cmd.Stdin = strings.NewReader("")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("minisign %v: %v\n%s", args, err, out)
		}
	}
	// A key made by the tool loads and signs what the tool verifies.
	run("-G", "-W", "-p", filepath.Join(dir, "tool.pub"), "-s", filepath.Join(dir, "tool.key"))
	priv, err := LoadPrivateKey(filepath.Join(dir, "tool.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(filepath.Join(dir, "tool.pub"))
	if err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join(dir, "msg")
	if err := os.WriteFile(msg, []byte("hello across the gap"), 0o644); err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(msg)
	sig, err := Sign(priv, body, "timestamp:0\tfile:msg", UntrustedComment(priv.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(msg+".minisig", sig, 0o644); err != nil {
		t.Fatal(err)
	}
	run("-V", "-q", "-m", msg, "-p", filepath.Join(dir, "tool.pub"))

	// A signature made by the tool verifies here.
	run("-S", "-s", filepath.Join(dir, "tool.key"), "-m", msg, "-x", msg+".tool.minisig", "-t", "from tool")
	toolSig, _ := os.ReadFile(msg + ".tool.minisig")
	s, err := Verify(pub, body, toolSig)
	if err != nil {
		t.Fatalf("tool signature rejected: %v", err)
	}
	if s.TrustedComment != "from tool" {
		t.Fatalf("trusted comment %q", s.TrustedComment)
	}

	// Our encrypted key decrypts in the tool (it signs with it).
	pubText, privText, _ := GenerateKeyCost([]byte("pw"), testCost)
	_ = os.WriteFile(filepath.Join(dir, "ours.key"), privText, 0o600)
	_ = os.WriteFile(filepath.Join(dir, "ours.pub"), pubText, 0o644)
	cmd := exec.Command(tool, "-S", "-s", filepath.Join(dir, "ours.key"), "-m", msg, "-x", msg+".ours.minisig")
	cmd.Stdin = strings.NewReader("pw\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("minisign cannot use our encrypted key: %v\n%s", err, out)
	}
	run("-V", "-q", "-m", msg, "-x", msg+".ours.minisig", "-p", filepath.Join(dir, "ours.pub"))
}

func b64(b []byte) string {
	var sb strings.Builder
	sb.WriteString("untrusted comment: test\n")
	sb.WriteString(encodeB64(b))
	return sb.String()
}

func encodeB64(b []byte) string { return base64Std.EncodeToString(b) }

var base64Std = base64.StdEncoding
