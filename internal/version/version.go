// Package version says which snag is running: the one string that
// `snag version` prints and every report carries.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// release is set by release builds, which may be built from a source
// archive without VCS information:
//
//	go build -ldflags "-X github.com/snagtrace/snag/internal/version.release=v1.2.0" ./cmd/snag
//
// The Makefile's VERSION variable does this.
var release string

// Info is what the binary knows about its own build.
type Info struct {
	Version    string    // the release; else the module version go stamped (v1.2.0 from `go install …@v1.2.0`, a pseudo-version from a checkout's commit); else "devel"
	Commit     string    // the VCS revision built from, "" when unknown
	CommitTime time.Time // that revision's commit time, zero when unknown
	Dirty      bool      // the work tree had uncommitted changes
	Go         string    // the Go toolchain that built it
}

// Get reads the build information stamped into the binary.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, release)
}

func fromBuildInfo(bi *debug.BuildInfo, release string) Info {
	info := Info{Version: release, Go: runtime.Version()}
	if bi == nil {
		if info.Version == "" {
			info.Version = "devel"
		}
		return info
	}
	if bi.GoVersion != "" {
		info.Go = bi.GoVersion
	}
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.CommitTime, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			info.Dirty = s.Value == "true"
		}
	}
	return info
}

// commitShown is how much of a revision the one-line form shows: enough
// to be unique in any repository of this size.
const commitShown = 12

// String is the one-line form every report and `snag version` print:
// "snag v1.2.0 (commit 62ab0a3c1d2e, 2026-11-30T05:58:00Z, go1.26.8)",
// with "+dirty" after a commit built with uncommitted changes.
func (i Info) String() string {
	var details []string
	if i.Commit != "" {
		c := "commit " + i.Commit[:min(len(i.Commit), commitShown)]
		if i.Dirty {
			c += "+dirty"
		}
		details = append(details, c)
	}
	if !i.CommitTime.IsZero() {
		details = append(details, i.CommitTime.UTC().Format(time.RFC3339))
	}
	if i.Go != "" {
		details = append(details, i.Go)
	}
	s := "snag " + i.Version
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	return s
}
