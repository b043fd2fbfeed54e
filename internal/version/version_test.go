package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "62ab0a3c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a"},
		{Key: "vcs.time", Value: "2026-11-30T05:58:00Z"},
		{Key: "vcs.modified", Value: "false"},
	}
	dirty := append(vcs[:3:3], debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	for _, tc := range []struct {
		name    string
		bi      *debug.BuildInfo
		release string
		want    Info
		str     string
	}{
		{"no build info", nil, "", Info{Version: "devel", Go: "go1.0"},
			"snag devel (go1.0)"},
		{"go run, no vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "",
			Info{Version: "devel", Go: "go1.26.8"}, "snag devel (go1.26.8)"},
		{"checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs}, "",
			Info{Version: "devel", Commit: "62ab0a3c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a", CommitTime: time.Date(2026, 11, 30, 5, 58, 0, 0, time.UTC), Go: "go1.26.8"},
			"snag devel (commit 62ab0a3c1d2e, 2026-11-30T05:58:00Z, go1.26.8)"},
		{"dirty checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: dirty}, "",
			Info{Version: "devel", Commit: "62ab0a3c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a", CommitTime: time.Date(2026, 11, 30, 5, 58, 0, 0, time.UTC), Dirty: true, Go: "go1.26.8"},
			"snag devel (commit 62ab0a3c1d2e+dirty, 2026-11-30T05:58:00Z, go1.26.8)"},
		{"go install @version", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}}, "",
			Info{Version: "v1.2.0", Go: "go1.26.8"}, "snag v1.2.0 (go1.26.8)"},
		{"release build", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs}, "v1.3.0",
			Info{Version: "v1.3.0", Commit: "62ab0a3c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a", CommitTime: time.Date(2026, 11, 30, 5, 58, 0, 0, time.UTC), Go: "go1.26.8"},
			"snag v1.3.0 (commit 62ab0a3c1d2e, 2026-11-30T05:58:00Z, go1.26.8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuildInfo(tc.bi, tc.release)
			if tc.bi == nil {
				got.Go = "go1.0" // runtime.Version(), whatever built the test
			}
			if got != tc.want {
				t.Errorf("fromBuildInfo = %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.str {
				t.Errorf("String() = %q, want %q", s, tc.str)
			}
		})
	}
}

// A binary built from this checkout knows its commit, and the -X override
// documented in the Makefile reaches the version.
func TestBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds snag")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse --show-toplevel: %v", err)
	}
	// The go command finds a repository by a .git directory only.
	if st, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !st.IsDir() {
		t.Skip("a git worktree (.git is a file): go build stamps no commit here")
	}
	bin := filepath.Join(t.TempDir(), "snag")
	// -buildvcs=true: a GOFLAGS=-buildvcs=false in the environment would
	// leave the commit out.
	build := exec.Command(gobin, "build", "-buildvcs=true", "-ldflags", "-X github.com/snagtrace/snag/internal/version.release=v9.8.7", "-o", bin, "../../cmd/snag")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("snag version: %v", err)
	}
	want := "snag v9.8.7 (commit " + string(head[:commitShown])
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("snag version printed %q, want it to start with %q", out, want)
	}
}
