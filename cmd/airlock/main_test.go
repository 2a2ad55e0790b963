package main

import "testing"

func TestExitCodes(t *testing.T) {
	if got := run([]string{"airlock", "--version"}); got != exitOK {
		t.Fatalf("--version exit = %d, want %d", got, exitOK)
	}
	if got := run([]string{"airlock", "--no-such-flag"}); got != exitUsage {
		t.Fatalf("unknown flag exit = %d, want %d", got, exitUsage)
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	missing := t.TempDir() + "/htpasswd"
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"airlock", "user", "list"}, exitUsage},                          // required flag missing
		{[]string{"airlock", "user", "list", "--htpasswd", missing}, exitFailure}, // parsed, file absent
		{[]string{"airlock", "user", "remove", "bob", "--htpasswd", missing}, exitFailure},
		{[]string{"airlock", "generate", "../../testdata/tiny-qwen2", "--prompt-ids", "1,2", "--max-tokens", "1", "--temperature", "0"}, exitOK},
		{[]string{"airlock", "generate", "../../testdata/tiny-qwen2", "--no-such-flag"}, exitUsage},
		{[]string{"airlock", "serve", "../../testdata/tiny-qwen2", "--no-such-flag"}, exitUsage},
	}
	for _, c := range cases {
		if got := run(c.args); got != c.want {
			t.Errorf("%v: exit %d, want %d", c.args[1:], got, c.want)
		}
	}
}
