// Package signing creates, loads and uses minisign keys (Ed25519, the format
// of the stock minisign tool) for airlock bundles. Keys made by `minisign -G`
// load here, and signatures made here verify with `minisign -V`.
//
// All signatures are prehashed (BLAKE2b-512, minisign's default since 0.8),
// so multi-gigabyte files are signed and verified while streaming.
package signing

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"

	"aead.dev/minisign"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/scrypt"
)

// KeyCost is the scrypt cost of a password-protected private key, in
// libsodium's ops/mem terms as stored in the minisign key file.
type KeyCost struct {
	Ops uint64
	Mem uint64
}

// DefaultKeyCost is libsodium's "sensitive" scrypt cost (1 GiB of memory),
// the cost `minisign -G` uses.
var DefaultKeyCost = KeyCost{Ops: 1 << 25, Mem: 1 << 30}

// Limits a decryptable key may declare; they match libsodium's maximums
// accepted by minisign, so hostile key files cannot demand more.
const (
	maxScryptOps = 1 << 25
	maxScryptMem = 1 << 30
)

// ErrWrongPassword is returned when a private key does not decrypt.
var ErrWrongPassword = errors.New("wrong password or corrupt private key")

// ErrPasswordRequired is returned when an encrypted private key is loaded
// without a password.
var ErrPasswordRequired = errors.New("private key is password-protected; a password is required")

// PrivateKey is a minisign private key.
type PrivateKey = minisign.PrivateKey

// PublicKey is a minisign public key.
type PublicKey = minisign.PublicKey

// GenerateKey makes a new key pair and returns the contents of the public
// key file (NAME.pub) and the private key file (NAME.key), both in minisign's
// text format. With a non-empty password the private key is encrypted with
// scrypt at DefaultKeyCost; with an empty one it is stored unencrypted (as
// `minisign -G -W` does).
func GenerateKey(password []byte) (pubFile, privFile []byte, err error) {
	return GenerateKeyCost(password, DefaultKeyCost)
}

// GenerateKeyCost is GenerateKey with an explicit scrypt cost.
func GenerateKeyCost(password []byte, cost KeyCost) (pubFile, privFile []byte, err error) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	pubFile, err = pub.MarshalText()
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	pubFile = append(pubFile, '\n')
	if len(password) == 0 {
		privFile, err = priv.MarshalText()
		if err != nil {
			return nil, nil, fmt.Errorf("generate key: %w", err)
		}
		return pubFile, append(privFile, '\n'), nil
	}
	privFile, err = encryptKey(password, priv, cost)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	return pubFile, privFile, nil
}

// Private key file layout (minisign): sig alg, kdf alg, checksum alg, salt,
// ops limit, mem limit, then the encrypted key id || secret key || checksum.
const (
	kdfNone     = 0x0000
	kdfScrypt   = 0x6353 // "Sc"
	chkBlake2b  = 0x3242 // "B2"
	privKeySize = 2 + 2 + 2 + 32 + 8 + 8 + 104
)

func encryptKey(password []byte, priv PrivateKey, cost KeyCost) ([]byte, error) {
	raw, err := rawPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	var plain [72]byte
	binary.LittleEndian.PutUint64(plain[:8], priv.ID())
	copy(plain[8:], raw)
	var msg [74]byte
	binary.LittleEndian.PutUint16(msg[:2], minisign.EdDSA)
	copy(msg[2:], plain[:])
	sum := blake2b.Sum256(msg[:])

	var b [privKeySize]byte
	binary.LittleEndian.PutUint16(b[0:], minisign.EdDSA)
	binary.LittleEndian.PutUint16(b[2:], kdfScrypt)
	binary.LittleEndian.PutUint16(b[4:], chkBlake2b)
	if _, err := io.ReadFull(rand.Reader, b[6:38]); err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint64(b[38:], cost.Ops)
	binary.LittleEndian.PutUint64(b[46:], cost.Mem)
	n, r, p := scryptParams(cost.Ops, cost.Mem)
	stream, err := scrypt.Key(password, b[6:38], n, r, p, 104)
	if err != nil {
		return nil, err
	}
	copy(b[54:], plain[:])
	copy(b[54+72:], sum[:])
	for i := range stream {
		b[54+i] ^= stream[i]
	}
	var out bytes.Buffer
	out.WriteString("untrusted comment: minisign encrypted secret key\n")
	out.WriteString(base64.StdEncoding.EncodeToString(b[:]))
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// scryptParams converts libsodium's ops/mem limits to scrypt's N, r, p the
// way libsodium (and so minisign) does.
func scryptParams(ops, mem uint64) (n, r, p int) {
	const minOps = 1 << 15
	ops = max(ops, minOps)
	r = 8
	if ops < mem/32 {
		p = 1
		maxN := ops / (4 * uint64(r))
		for logN := 1; logN < 63; logN++ {
			if n = 1 << logN; uint64(n) > maxN/2 {
				break
			}
		}
		return n, r, p
	}
	maxN := mem / (uint64(r) * 128)
	for logN := 1; logN < 63; logN++ {
		if n = 1 << logN; uint64(n) > maxN/2 {
			break
		}
	}
	rp := min((ops/4)/uint64(n), 0x3fffffff)
	return n, r, int(rp) / r
}

// rawPrivateKey returns the 64-byte Ed25519 private key inside priv.
func rawPrivateKey(priv PrivateKey) ([]byte, error) {
	text, err := priv.MarshalText()
	if err != nil {
		return nil, err
	}
	b, err := decodeKeyFile(text)
	if err != nil {
		return nil, err
	}
	return b[62:126], nil
}

// decodeKeyFile returns the binary body of a minisign key file.
func decodeKeyFile(text []byte) ([]byte, error) {
	lines := strings.Split(strings.ReplaceAll(string(text), "\r", ""), "\n")
	var body string
	for _, l := range lines {
		if strings.HasPrefix(l, "untrusted comment:") || strings.TrimSpace(l) == "" {
			continue
		}
		body = strings.TrimSpace(l)
		break
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("not a minisign key file: %w", err)
	}
	return b, nil
}

// ParsePrivateKey decodes a minisign private key file's contents,
// decrypting it with password when it is encrypted.
func ParsePrivateKey(text, password []byte) (PrivateKey, error) {
	b, err := decodeKeyFile(text)
	if err != nil {
		return PrivateKey{}, err
	}
	if len(b) != privKeySize {
		return PrivateKey{}, fmt.Errorf("not a minisign private key (%d bytes, want %d)", len(b), privKeySize)
	}
	if alg := binary.LittleEndian.Uint16(b[0:]); alg != minisign.EdDSA {
		return PrivateKey{}, fmt.Errorf("unsupported private key algorithm %#x", alg)
	}
	if chk := binary.LittleEndian.Uint16(b[4:]); chk != chkBlake2b {
		return PrivateKey{}, fmt.Errorf("unsupported private key checksum algorithm %#x", chk)
	}
	switch kdf := binary.LittleEndian.Uint16(b[2:]); kdf {
	case kdfNone:
		var k PrivateKey
		if err := k.UnmarshalText(text); err != nil {
			return PrivateKey{}, err
		}
		return k, checkKeyPair(k)
	case kdfScrypt:
		if len(password) == 0 {
			return PrivateKey{}, ErrPasswordRequired
		}
		ops := binary.LittleEndian.Uint64(b[38:])
		mem := binary.LittleEndian.Uint64(b[46:])
		if ops > maxScryptOps || mem > maxScryptMem {
			return PrivateKey{}, fmt.Errorf("private key asks for scrypt ops=%d mem=%d, above the limits %d/%d", ops, mem, maxScryptOps, maxScryptMem)
		}
		n, r, p := scryptParams(ops, mem)
		stream, err := scrypt.Key(password, b[6:38], n, r, p, 104)
		if err != nil {
			return PrivateKey{}, fmt.Errorf("decrypt private key: %w", err)
		}
		var plain [104]byte
		for i := range plain {
			plain[i] = b[54+i] ^ stream[i]
		}
		var msg [74]byte
		binary.LittleEndian.PutUint16(msg[:2], minisign.EdDSA)
		copy(msg[2:], plain[:72])
		sum := blake2b.Sum256(msg[:])
		if subtle.ConstantTimeCompare(sum[:], plain[72:]) != 1 {
			return PrivateKey{}, ErrWrongPassword
		}
		// Re-encode unencrypted and parse with the library, so the key
		// value is built by its own code.
		var clear [privKeySize]byte
		copy(clear[:6], b[:6])
		binary.LittleEndian.PutUint16(clear[2:], kdfNone)
		copy(clear[54:], plain[:72])
		var k PrivateKey
		if err := k.UnmarshalText([]byte(base64.StdEncoding.EncodeToString(clear[:]))); err != nil {
			return PrivateKey{}, err
		}
		return k, checkKeyPair(k)
	default:
		return PrivateKey{}, fmt.Errorf("unsupported private key encryption %#x", kdf)
	}
}

// checkKeyPair signs and verifies a probe so that a corrupt unencrypted key
// is caught at load time rather than producing unverifiable bundles.
func checkKeyPair(k PrivateKey) error {
	pub, ok := k.Public().(PublicKey)
	if !ok {
		return errors.New("private key has no public key")
	}
	probe := []byte("airlock key check")
	if !minisign.Verify(pub, probe, minisign.SignWithComments(k, probe, "probe", "probe")) {
		return errors.New("private key is corrupt: its signatures do not verify")
	}
	return nil
}

// LoadPrivateKey reads a minisign private key file, decrypting it with
// password when it is encrypted.
func LoadPrivateKey(path string, password []byte) (PrivateKey, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("load private key: %w", err)
	}
	k, err := ParsePrivateKey(text, password)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("load private key %s: %w", path, err)
	}
	return k, nil
}

// IsEncryptedKeyFile reports whether a private key file needs a password.
func IsEncryptedKeyFile(path string) (bool, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read private key: %w", err)
	}
	b, err := decodeKeyFile(text)
	if err != nil || len(b) < 4 {
		return false, fmt.Errorf("read private key %s: not a minisign private key", path)
	}
	return binary.LittleEndian.Uint16(b[2:]) == kdfScrypt, nil
}

// ParsePublicKey decodes a minisign public key: a .pub file's contents or
// the bare base64 line (as given to `minisign -P`).
func ParsePublicKey(text []byte) (PublicKey, error) {
	var k PublicKey
	if err := k.UnmarshalText(bytes.TrimSpace(text)); err != nil {
		return PublicKey{}, err
	}
	return k, nil
}

// LoadPublicKey reads a minisign public key file.
func LoadPublicKey(path string) (PublicKey, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return PublicKey{}, fmt.Errorf("load public key: %w", err)
	}
	k, err := ParsePublicKey(text)
	if err != nil {
		return PublicKey{}, fmt.Errorf("load public key %s: %w", path, err)
	}
	return k, nil
}

// KeyID formats a key id the way minisign prints it (upper-case hex).
func KeyID(id uint64) string { return strings.ToUpper(fmt.Sprintf("%016x", id)) }

// Digest accumulates the BLAKE2b-512 prehash minisign signs. It is an
// io.Writer: put it in an io.MultiWriter to sign data while streaming it.
type Digest struct{ h hash.Hash }

// NewDigest returns an empty Digest.
func NewDigest() *Digest {
	h, err := blake2b.New512(nil)
	if err != nil {
		panic(err) // unreachable: no key
	}
	return &Digest{h: h}
}

// Write adds p to the digest; it never fails.
func (d *Digest) Write(p []byte) (int, error) { return d.h.Write(p) }

// Sum returns the digest of everything written so far.
func (d *Digest) Sum() []byte { return d.h.Sum(nil) }

// ErrCommentNewline is returned for a trusted or untrusted comment that
// would break the signature file's line structure.
var ErrCommentNewline = errors.New("signature comment contains a line break")

// SignDigest returns a prehashed minisign signature (the text of a .minisig
// file) over the message whose Digest is digest. Signing is deterministic:
// the same key, digest and comments give the same bytes.
func SignDigest(priv PrivateKey, digest []byte, trustedComment, untrustedComment string) ([]byte, error) {
	if strings.ContainsAny(trustedComment, "\r\n") || strings.ContainsAny(untrustedComment, "\r\n") {
		return nil, ErrCommentNewline
	}
	if len(digest) != blake2b.Size {
		return nil, fmt.Errorf("sign: digest is %d bytes, want %d", len(digest), blake2b.Size)
	}
	// PrivateKey.Sign returns a whole signature file; its Signature field is
	// the plain Ed25519 signature of the given bytes, which is all we take.
	sigOf := func(msg []byte, h crypto.Hash) ([ed25519.SignatureSize]byte, error) {
		text, err := priv.Sign(nil, msg, h)
		if err != nil {
			return [ed25519.SignatureSize]byte{}, err
		}
		var s minisign.Signature
		if err := s.UnmarshalText(text); err != nil {
			return [ed25519.SignatureSize]byte{}, err
		}
		return s.Signature, nil
	}
	msgSig, err := sigOf(digest, crypto.BLAKE2b_512)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	commentSig, err := sigOf(append(msgSig[:], trustedComment...), crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	s := minisign.Signature{
		Algorithm:        minisign.HashEdDSA,
		KeyID:            priv.ID(),
		TrustedComment:   trustedComment,
		UntrustedComment: untrustedComment,
		Signature:        msgSig,
		CommentSignature: commentSig,
	}
	return s.MarshalText()
}

// Sign returns a prehashed minisign signature over message.
func Sign(priv PrivateKey, message []byte, trustedComment, untrustedComment string) ([]byte, error) {
	d := NewDigest()
	_, _ = d.Write(message)
	return SignDigest(priv, d.Sum(), trustedComment, untrustedComment)
}

// Signature is a parsed minisign signature file.
type Signature = minisign.Signature

// ParseSignature decodes a .minisig file's contents.
func ParseSignature(text []byte) (Signature, error) {
	var s Signature
	if err := s.UnmarshalText(text); err != nil {
		return Signature{}, fmt.Errorf("malformed signature: %w", err)
	}
	return s, nil
}

// WrongKeyError reports a signature made by a different key than the
// trusted one.
type WrongKeyError struct{ SignedBy, Trusted uint64 }

func (e *WrongKeyError) Error() string {
	return fmt.Sprintf("signed by key %s, but the trusted key is %s", KeyID(e.SignedBy), KeyID(e.Trusted))
}

// ErrBadSignature is returned when a signature does not match the data.
var ErrBadSignature = errors.New("signature does not match the data (tampered or corrupt)")

// VerifyDigest checks a minisign signature against the digest of a message
// (legacy non-prehashed signatures cannot be checked from a digest and are
// refused). It returns the parsed signature, whose TrustedComment is
// authentic when err is nil.
func VerifyDigest(pub PublicKey, digest, sigText []byte) (Signature, error) {
	s, err := ParseSignature(sigText)
	if err != nil {
		return Signature{}, err
	}
	if s.KeyID != pub.ID() {
		return Signature{}, &WrongKeyError{SignedBy: s.KeyID, Trusted: pub.ID()}
	}
	if s.Algorithm != minisign.HashEdDSA {
		return Signature{}, errors.New("legacy (non-prehashed) signature; airlock requires prehashed signatures")
	}
	raw, err := rawPublicKey(pub)
	if err != nil {
		return Signature{}, err
	}
	if !ed25519.Verify(raw, digest, s.Signature[:]) {
		return Signature{}, ErrBadSignature
	}
	if !ed25519.Verify(raw, append(s.Signature[:], s.TrustedComment...), s.CommentSignature[:]) {
		return Signature{}, errors.New("trusted comment does not match its signature (tampered)")
	}
	return s, nil
}

// Verify checks a prehashed minisign signature over message.
func Verify(pub PublicKey, message, sigText []byte) (Signature, error) {
	d := NewDigest()
	_, _ = d.Write(message)
	return VerifyDigest(pub, d.Sum(), sigText)
}

// VerifyReader streams r and checks sigText against everything read.
func VerifyReader(pub PublicKey, r io.Reader, sigText []byte) (Signature, error) {
	d := NewDigest()
	if _, err := io.Copy(d, r); err != nil {
		return Signature{}, fmt.Errorf("read signed data: %w", err)
	}
	return VerifyDigest(pub, d.Sum(), sigText)
}

func rawPublicKey(pub PublicKey) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(pub.String())
	if err != nil || len(b) != 10+ed25519.PublicKeySize {
		return nil, errors.New("malformed public key")
	}
	return ed25519.PublicKey(b[10:]), nil
}

// UntrustedComment is the untrusted comment airlock writes on signatures.
func UntrustedComment(id uint64) string {
	return "signature from airlock secret key " + KeyID(id)
}

// FormatTimestamp renders a trusted-comment timestamp as minisign does.
func FormatTimestamp(unix int64) string { return "timestamp:" + strconv.FormatInt(unix, 10) }
