package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// snag analyze is post-incident work, done on a laptop: snag builds for
// macOS and Windows, where attach, run, record and doctor say they need
// Linux, and nothing that traces is compiled in.
func TestCrossBuild(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	targets := []struct{ goos, goarch string }{
		{"darwin", "arm64"},
		{"darwin", "amd64"},
		{"windows", "amd64"},
	}
	for _, tg := range targets {
		t.Run(tg.goos+"/"+tg.goarch, func(t *testing.T) {
			env := append(os.Environ(), "GOOS="+tg.goos, "GOARCH="+tg.goarch, "CGO_ENABLED=0")
			build := exec.Command(gobin, "build", "-o", filepath.Join(t.TempDir(), "snag"), ".")
			build.Env = env
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("GOOS=%s GOARCH=%s go build ./cmd/snag: %v\n%s", tg.goos, tg.goarch, err, out)
			}
			list := exec.Command(gobin, "list", "-deps", ".")
			list.Env = env
			out, err := list.Output()
			if err != nil {
				t.Fatalf("go list -deps: %v", err)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, linuxOnly := range []string{
					"github.com/snagtrace/snag/bpf",
					"github.com/snagtrace/snag/internal/tracer",
					"github.com/snagtrace/snag/internal/features",
					"github.com/cilium/ebpf",
				} {
					if dep == linuxOnly || strings.HasPrefix(dep, linuxOnly+"/") {
						t.Errorf("snag for %s/%s compiles in %s, which only traces on Linux", tg.goos, tg.goarch, dep)
					}
				}
			}
		})
	}
}
