//go:build linux

package cli

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// Every bad flag of snag serve is a one-line error and exit 2, before
// anything is traced or listened on.
func TestServeUsageErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().String()
	missing := filepath.Join(t.TempDir(), "nope")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no selector", []string{}, "say what to trace"},
		{"bad regexp", []string{"--comm", "("}, "--comm: error parsing regexp"},
		{"bad cmdline regexp", []string{"--cmdline", "a[b"}, "--cmdline: error parsing regexp"},
		{"bad pid", []string{"--pid", "web"}, `"web" is not a process id`},
		{"empty cgroup", []string{"--cgroup", ""}, "--cgroup: empty path"},
		{"short interval", []string{"--comm", "x", "--interval", "100ms"}, "--interval must be at least 1s"},
		{"listen without port", []string{"--comm", "x", "--listen", "localhost"}, "want HOST:PORT"},
		{"listen busy", []string{"--comm", "x", "--listen", busy}, "address already in use"},
		{"keep without dir", []string{"--comm", "x", "--record-keep", "5m"}, "--record-keep needs --record-dir"},
		{"keep under a window", []string{"--comm", "x", "--record-dir", t.TempDir(), "--record-keep", "10s"}, "shorter than a window"},
		{"record dir missing", []string{"--comm", "x", "--record-dir", missing}, "no such file or directory"},
		{"no event limit", []string{"--comm", "x", "--max-events", "0"}, "--max-events must be positive"},
		{"max series", []string{"--comm", "x", "--max-series", "0"}, "--max-series must be positive"},
		{"otlp not a URL", []string{"--comm", "x", "--otlp-endpoint", "collector:4318"}, "want http://host:port or https://host:port"},
		{"bad expect", []string{"--comm", "x", "--expect", "db:notaport"}, "--expect"},
		{"missing expect file", []string{"--comm", "x", "--expect-file", missing}, "--expect-file"},
		{"arguments", []string{"--comm", "x", "extra"}, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(append([]string{"serve"}, tc.args...)...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d; stderr %q", code, ExitUsage, stderr)
			}
			first, _, _ := strings.Cut(stderr, "\n")
			if !strings.HasPrefix(first, "snag: ") || !strings.Contains(first, tc.want) {
				t.Errorf("stderr's first line %q, want snag: ... %q", first, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}
