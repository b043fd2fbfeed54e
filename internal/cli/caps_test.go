//go:build linux

package cli

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/features"
	"github.com/snagtrace/snag/internal/testutil"
)

// snag as nobody, with the capabilities features.Capabilities names, each
// dropped in turn, attaching to processes of root's whose executables only
// root may read: what the list says each one is for is what is lost
// without it, and with all of them nothing is.
func TestCapabilitiesAsNobody(t *testing.T) {
	if testing.Short() {
		t.Skip("builds snag and traces")
	}
	testutil.RequireBPF(t)
	testutil.RequireCommands(t, testutil.Command{Name: "setpriv", Package: "util-linux"})

	// snag where nobody can run it.
	pub := t.TempDir()
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	snag := filepath.Join(pub, "snag")
	if out, err := exec.Command("go", "build", "-o", snag, "../../cmd/snag").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The targets: shells in a directory only root may enter, waiting
	// 50ms at a time, so that their slow waits carry stacks through their
	// executables. The second one's is deleted once it runs, as an upgrade
	// in place leaves a server's.
	private := t.TempDir() // 0700
	start := func(name string) (pid int, exe string) {
		exe = filepath.Join(private, name)
		copyFile(t, "/bin/sh", exe)
		cmd := exec.Command(exe, "-c", "while :; do /bin/sleep 0.05; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd.Process.Pid, exe
	}
	pid, sh := start("sh")
	deletedPID, deleted := start("upgraded")
	if err := os.Remove(deleted); err != nil {
		t.Fatal(err)
	}
	deleted += " (deleted)"

	have, err := features.EffectiveCaps()
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, c := range features.Capabilities {
		if !have.Has(c) {
			// Not in this test's bounding set (a container may lack
			// CAP_CHECKPOINT_RESTORE): snag as nobody goes without it too.
			t.Logf("%s not available to grant", c.Name)
			continue
		}
		all = append(all, c.Name)
	}
	for _, tc := range []struct {
		drop     string
		pid      int
		exit     int
		exe      string // the target's executable in the report
		denied   string // a note says a file of the target could not be opened, for this reason
		stderrIs string // in stderr
	}{
		{drop: "", pid: pid, exit: ExitOK, exe: sh},
		{drop: "", pid: deletedPID, exit: ExitOK, exe: deleted},
		{drop: "CAP_BPF", pid: pid, exit: ExitUnsupported, stderrIs: "without CAP_BPF"},
		{drop: "CAP_PERFMON", pid: pid, exit: ExitUnsupported, stderrIs: "without CAP_PERFMON"},
		{drop: "CAP_SYS_PTRACE", pid: pid, exit: ExitOK, exe: "", denied: "permission denied"},
		{drop: "CAP_DAC_READ_SEARCH", pid: pid, exit: ExitOK, exe: sh, denied: "permission denied"},
		{drop: "CAP_CHECKPOINT_RESTORE", pid: deletedPID, exit: ExitOK, exe: deleted, denied: "operation not permitted"},
	} {
		name := map[int]string{pid: "sh", deletedPID: "deleted sh"}[tc.pid]
		if tc.drop == "" {
			name += " with all"
		} else {
			name += " without " + tc.drop
		}
		t.Run(name, func(t *testing.T) {
			var caps []string
			for _, c := range all {
				if c != tc.drop {
					caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
				}
			}
			set := strings.Join(append([]string{"-all"}, caps...), ",")
			cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
				"--inh-caps="+set, "--ambient-caps="+set,
				snag, "attach", "-p", strconv.Itoa(tc.pid), "-d", "1s", "--format", "json")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.exit {
				t.Fatalf("snag attach as nobody with %s: exit %d, want %d\n%s", set, code, tc.exit, stderr.String())
			}
			if code != ExitOK {
				if !strings.Contains(stderr.String(), tc.stderrIs) {
					t.Errorf("stderr %q lacks %q", stderr.String(), tc.stderrIs)
				}
				return
			}
			var doc struct {
				Target struct{ Exe string }
				Notes  []string
			}
			if err := json.Unmarshal(out, &doc); err != nil {
				t.Fatalf("report: %v\n%s", err, out)
			}
			if doc.Target.Exe != tc.exe {
				t.Errorf("target exe %q, want %q", doc.Target.Exe, tc.exe)
			}
			notes := strings.Join(doc.Notes, "\n")
			if tc.denied != "" && !strings.Contains(notes, tc.denied) {
				t.Errorf("no note says %s; notes: %q", tc.denied, doc.Notes)
			}
			if tc.denied == "" && (strings.Contains(notes, "permission denied") || strings.Contains(notes, "not permitted")) {
				t.Errorf("a note says a file could not be opened: %q", doc.Notes)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
