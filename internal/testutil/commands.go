package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI (CI set and not "false", as CI
// services and .ci/run set it), where every test package is installed and a
// missing one is a broken setup, not a reason to skip.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Command is a program a test needs and the Debian package that has it.
type Command struct{ Name, Package string }

// LookCommand finds a program in PATH or in /usr/sbin, where Debian puts
// daemons that root's PATH may lack.
func LookCommand(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// RequireCommands skips the test when one of cmds is missing, naming the
// packages to install; in CI it fails instead.
func RequireCommands(t testing.TB, cmds ...Command) {
	t.Helper()
	var missing, pkgs []string
	for _, c := range cmds {
		if _, err := LookCommand(c.Name); err != nil {
			missing = append(missing, c.Name)
			pkgs = append(pkgs, c.Package)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := strings.Join(missing, ", ") + " not installed (apt-get install " + strings.Join(pkgs, " ") + ")"
	if InCI() {
		t.Fatal(msg + ": CI installs it")
	}
	t.Skip(msg)
}
