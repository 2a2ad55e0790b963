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
