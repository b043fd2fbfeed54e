package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/features"
	"github.com/snagtrace/snag/internal/testutil"
)

// unit reads a systemd unit file: section → key → values in order.
// Continuation lines and quoting are not used by snag's files.
func unit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value in a section: %q", path, n, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func capNames() []string {
	var names []string
	for _, c := range features.Capabilities {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

// The unit grants exactly the capabilities snag's list names.
func TestUnitCapabilities(t *testing.T) {
	svc := unit(t, "snag.service")["Service"]
	want := capNames()
	for _, key := range []string{"AmbientCapabilities", "CapabilityBoundingSet"} {
		var got []string
		for _, v := range svc[key] {
			got = append(got, strings.Fields(v)...)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want internal/features.Capabilities: %v", key, got, want)
		}
	}
	for key, want := range map[string]string{"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict"} {
		if got := svc[key]; !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %v, want %s", key, got, want)
		}
	}
	for _, key := range []string{"User", "ProtectProc", "ProcSubset", "PrivateUsers"} {
		// Root, or a view of /proc that hides other processes, or a user
		// namespace whose capabilities count for nothing outside it.
		if v, ok := svc[key]; ok {
			t.Errorf("%s=%v would keep snag from tracing other users' processes", key, v)
		}
	}
}

// The default file sets SNAG_ARGS, which ExecStart passes, and the flight
// recorder writes where ProtectSystem=strict leaves it a directory: the
// unit's StateDirectory.
func TestDefaultFile(t *testing.T) {
	svc := unit(t, "snag.service")["Service"]
	if got := svc["ExecStart"]; len(got) != 1 || !strings.HasSuffix(got[0], " serve $SNAG_ARGS") {
		t.Errorf("ExecStart = %q, want snag serve $SNAG_ARGS", got)
	}
	if got := svc["EnvironmentFile"]; !slices.Equal(got, []string{"/etc/default/snag"}) {
		t.Errorf("EnvironmentFile = %q, want /etc/default/snag", got)
	}
	b, err := os.ReadFile("snag.default")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SNAG_ARGS="); ok {
			args = strings.Fields(strings.Trim(v, `"`))
		}
	}
	if len(args) == 0 {
		t.Fatal("snag.default does not set SNAG_ARGS")
	}
	i := slices.Index(args, "--record-dir")
	if i < 0 || i+1 == len(args) {
		t.Fatalf("SNAG_ARGS %q: no --record-dir", args)
	}
	state := svc["StateDirectory"]
	if len(state) != 1 || !strings.HasPrefix(args[i+1]+"/", "/var/lib/"+state[0]+"/") {
		t.Errorf("--record-dir %s is not in the StateDirectory %v (/var/lib/…), the one place ProtectSystem=strict lets snag write", args[i+1], state)
	}
}

// systemd-analyze verify reads the unit as systemd would. Unknown keys and
// bad values are only warnings to it, so any output fails the test.
func TestUnitVerifies(t *testing.T) {
	testutil.RequireCommands(t, testutil.Command{Name: "systemd-analyze", Package: "systemd"})
	b, err := os.ReadFile("snag.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's program exists: the test binary
	// stands in for the /usr/bin/snag the package installs.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "snag.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "/usr/bin/snag ", self+" ")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify snag.service: %v\n%s", err, out)
	}
}
