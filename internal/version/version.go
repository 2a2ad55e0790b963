// Package version holds the airlock build version, stamped at link time with
//
//	-ldflags "-X github.com/airlock-dev/airlock/internal/version.Version=v1.2.3"
package version

import "runtime/debug"

// Version is the release version of this build. It is set at link time; when
// it is not, String falls back to the module version recorded by the Go
// toolchain, then to "dev".
var Version = ""

// String returns the version of the running binary.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
