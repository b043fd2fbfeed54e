package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// HostileTarget runs a copy of sleep named python3.11 as nobody, in its
// own user and mount namespace, which then mounts a tmpfs over the
// binary's directory and plants there what plant (a shell command, given
// the path as $1) makes. It returns the target's pid and the path its
// binary was mapped from, which now leads to the planted thing.
func HostileTarget(t testing.TB, plant string) (pid int, exe string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: the target runs as nobody and snag reads map_files")
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // nobody must reach its binary
	}
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	exe = filepath.Join(bin, "python3.11")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `"$1" 60 & pid=$!
while ! grep -q python3.11 /proc/$pid/maps 2>/dev/null; do sleep 0.01; done
mount -t tmpfs none "$(dirname "$1")" || exit 1
` + plant + `
echo $pid
wait`
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", exe)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a target in its own namespaces: %v", err)
	}

	if _, err := fmt.Fscan(out, &pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Skipf("the target could not set itself up (no unprivileged user namespaces?): %v", err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL); cmd.Process.Kill(); cmd.Wait() })
	return pid, exe
}
