package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func init() { BcryptCost = bcrypt.MinCost }

func TestHtpasswdRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := SetUser(path, "alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := SetUser(path, "bob", "battery staple"); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	h, err := LoadHtpasswd(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, pass string
		want       bool
	}{
		{"alice", "correct horse", true}, {"alice", "correct horse", true}, // cached
		{"alice", "wrong", false}, {"bob", "battery staple", true}, {"carol", "correct horse", false},
		{"", "", false},
	} {
		if got := h.Check(tc.user, tc.pass); got != tc.want {
			t.Errorf("Check(%q, %q) = %v", tc.user, tc.pass, got)
		}
	}
	if err := RemoveUser(path, "alice"); err != nil {
		t.Fatal(err)
	}
	// A change in size is noticed; a removed user stops working at once even
	// though its credentials were cached.
	if changed, err := h.ReloadIfChanged(); err != nil || !changed {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if h.Check("alice", "correct horse") {
		t.Fatal("removed user still accepted")
	}
	users, err := ListUsers(path)
	if err != nil || strings.Join(users, ",") != "bob" {
		t.Fatalf("list: %v %v", users, err)
	}
	if err := RemoveUser(path, "nobody"); err == nil {
		t.Fatal("removing a missing user succeeded")
	}
	if err := SetUser(path, "a:b", "password1"); err == nil {
		t.Fatal("colon in user name accepted")
	}
	if err := SetUser(path, "dave", "short"); err == nil {
		t.Fatal("short password accepted")
	}
}

func TestHtpasswdFromApacheTool(t *testing.T) {
	// Apache's `htpasswd -B` writes the $2y$ prefix.
	hash, _ := bcrypt.GenerateFromPassword([]byte("secretpw"), 5)
	data := "# comment\n\nalice:$2y$" + string(hash[4:]) + "\n"
	users, err := ParseHtpasswd([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if bcrypt.CompareHashAndPassword(users["alice"], []byte("secretpw")) != nil {
		t.Fatal("$2y$ entry does not verify")
	}
	for _, bad := range []string{
		"alice:$apr1$xyz$abc\n",                     // MD5
		"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", // SHA1
		"alice\n",
		"alice:" + string(hash) + "\nalice:" + string(hash) + "\n",
		"alice:$2y$05$short\n",
	} {
		if _, err := ParseHtpasswd([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestAPIKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	tok, info, err := CreateKey(path, "ci bot")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, KeyPrefix+info.ID+"_") {
		t.Fatalf("token %q id %q", tok, info.ID)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), tok[len(KeyPrefix)+17:]) {
		t.Fatal("key secret stored in clear")
	}
	k, err := LoadAPIKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := k.Check(tok); !ok || id != info.ID {
		t.Fatalf("check: %q %v", id, ok)
	}
	for _, bad := range []string{"", tok[:len(tok)-1] + "A", "alk_0000000000000000_" + strings.Repeat("A", 43), "Bearer " + tok} {
		if _, ok := k.Check(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
	list, err := ListKeys(path)
	if err != nil || len(list) != 1 || list[0].Name != "ci bot" {
		t.Fatalf("list %+v %v", list, err)
	}
	if err := RevokeKey(path, info.ID); err != nil {
		t.Fatal(err)
	}
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.Check(tok); ok {
		t.Fatal("revoked key accepted")
	}
}

func TestThrottle(t *testing.T) {
	now := time.Unix(1000, 0)
	th := NewThrottle()
	th.Now = func() time.Time { return now }
	for range 5 {
		if _, b := th.Blocked("addr:x"); b {
			t.Fatal("blocked too early")
		}
		th.Fail("addr:x")
	}
	wait, blocked := th.Blocked("addr:x", "user:y")
	if !blocked || wait != 30*time.Second {
		t.Fatalf("after 5 failures: %v %v", wait, blocked)
	}
	now = now.Add(31 * time.Second)
	if _, b := th.Blocked("addr:x"); b {
		t.Fatal("still blocked after lockout")
	}
	th.Fail("addr:x")
	if wait, _ := th.Blocked("addr:x"); wait != 60*time.Second {
		t.Fatalf("lockout did not double: %v", wait)
	}
	// Bounded memory.
	th.MaxEntries = 10
	for i := range 100 {
		now = now.Add(2 * time.Minute)
		th.Fail("addr:" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	if n := len(th.entries); n > 11 {
		t.Fatalf("%d entries kept", n)
	}
}

func TestAuthenticator(t *testing.T) {
	dir := t.TempDir()
	hp, kp := filepath.Join(dir, "htpasswd"), filepath.Join(dir, "keys")
	if err := SetUser(hp, "alice", "correct horse"); err != nil {
		t.Fatal(err)
	}
	tok, info, err := CreateKey(kp, "sdk")
	if err != nil {
		t.Fatal(err)
	}
	users, _ := LoadHtpasswd(hp)
	keys, _ := LoadAPIKeys(kp)
	a := &Authenticator{Users: users, Keys: keys, Throttle: NewThrottle()}
	req := func(addr string, set func(r *http.Request)) (Identity, error) {
		r := httptest.NewRequest("GET", "/v1/models", nil)
		r.RemoteAddr = addr
		set(r)
		return a.Authenticate(r)
	}
	if _, err := req("127.0.0.1:1", func(*http.Request) {}); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("no creds: %v", err)
	}
	if id, err := req("127.0.0.1:1", func(r *http.Request) { r.SetBasicAuth("alice", "correct horse") }); err != nil || id.User != "alice" || id.Method != "basic" {
		t.Fatalf("basic: %+v %v", id, err)
	}
	if id, err := req("127.0.0.1:1", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }); err != nil || id.User != "key:"+info.ID {
		t.Fatalf("bearer: %+v %v", id, err)
	}
	// Five wrong passwords from one address lock that address out, even for
	// the right password; another address still works.
	for range 5 {
		if _, err := req("10.0.0.9:1", func(r *http.Request) { r.SetBasicAuth("mallory", "guess") }); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	var te *ThrottledError
	if _, err := req("10.0.0.9:2", func(r *http.Request) { r.SetBasicAuth("alice", "correct horse") }); !errors.As(err, &te) || te.RetryAfter <= 0 {
		t.Fatalf("want throttled, got %v", err)
	}
	if _, err := req("127.0.0.1:1", func(r *http.Request) { r.SetBasicAuth("alice", "correct horse") }); err != nil {
		t.Fatalf("other address: %v", err)
	}
}
