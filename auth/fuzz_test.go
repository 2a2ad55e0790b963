package auth

import (
	"testing"
)

// FuzzParseHtpasswd: arbitrary files never panic, and every accepted entry
// has a valid user name and a bcrypt hash.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte("alice:$2y$05$Jp5B8Y0ym3LQbDp5HPgDJeUAzsv6vD8JqsHcb5CCLo9BdIUBzZxYO\n"))
	f.Add([]byte("# c\n\nbob:$apr1$x$y\n"))
	f.Add([]byte("a:b:c\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := ParseHtpasswd(data)
		if err != nil {
			return
		}
		for u, h := range users {
			if ValidUserName(u) != nil || !isBcrypt(string(h)) {
				t.Fatalf("accepted %q:%q", u, h)
			}
		}
	})
}

// FuzzParseAPIKeys: arbitrary key files never panic, and accepted keys
// have well-formed ids.
func FuzzParseAPIKeys(f *testing.F) {
	f.Add([]byte("# k\n0123456789abcdef " + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff 2026-01-01T00:00:00Z ci bot\n"))
	f.Add([]byte("x y z\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseAPIKeys(data)
		if err != nil {
			return
		}
		for id, k := range keys {
			if len(id) != 16 || k.ID != id {
				t.Fatalf("accepted key id %q", id)
			}
		}
	})
}

// FuzzAPIKeyCheck: arbitrary bearer tokens never panic and never match.
func FuzzAPIKeyCheck(f *testing.F) {
	k := &APIKeys{keys: map[string]KeyInfo{"0123456789abcdef": {ID: "0123456789abcdef"}}}
	f.Add("alk_0123456789abcdef_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		if _, ok := k.Check(tok); ok {
			t.Fatalf("matched %q", tok)
		}
	})
}
