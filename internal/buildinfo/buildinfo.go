// Package buildinfo reports which build of Parley is running, for
// `parley version`, XEP-0092 answers and logs alike.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Version derives the version from the build information the Go
// toolchain embeds in every binary, so it needs neither linker flags nor a
// mutable package variable: a module-aware release build ("go install
// parley@v1.2.3") reports its module version; a build from a git
// checkout reports the pseudo-version the toolchain derives from the
// commit ("0.0.0-20261207225150-26b2ddc1c2b8", with "+dirty" for
// uncommitted changes); a toolchain that records only the revision gives
// "devel+" and the revision; a build without VCS information (-buildvcs=
// false) reports "devel".
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return strings.TrimPrefix(v, "v")
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel+" + rev
}
