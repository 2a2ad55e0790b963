// Package signingtest makes throwaway signing keys for tests.
package signingtest

import (
	"testing"

	"github.com/airlock-dev/airlock/internal/signing"
)

// KeyPair is an unencrypted key pair and the text of its public key file.
type KeyPair struct {
	PubText []byte // contents of a NAME.pub file
	Pub     signing.PublicKey
	Priv    *signing.PrivateKey
}

// NewKeyPair generates an unencrypted key pair or fails the test.
func NewKeyPair(t testing.TB) KeyPair {
	t.Helper()
	pubText, privText, err := signing.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signing.ParsePublicKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signing.ParsePrivateKey(privText, nil)
	if err != nil {
		t.Fatal(err)
	}
	return KeyPair{PubText: pubText, Pub: pub, Priv: &priv}
}
