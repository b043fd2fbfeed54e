package tracer

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/snagtrace/snag/internal/procfs"
)

// fakeProc writes a /proc with one process: its comm, exe and cmdline.
func fakeProc(t *testing.T, pid int, comm, exe string, args ...string) procfs.FS {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmdline := ""
	for _, a := range args {
		cmdline += a + "\x00"
	}
	for name, content := range map[string]string{"comm": comm + "\n", "cmdline": cmdline} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
		t.Fatal(err)
	}
	return procfs.FS{Root: root}
}

func TestSelectorMatches(t *testing.T) {
	const pid = 4242
	p := fakeProc(t, pid, "gunicorn", "/usr/bin/python3.11", "/usr/bin/python3", "-m", "gunicorn", "app:wsgi")
	re := regexp.MustCompile
	for _, tc := range []struct {
		name string
		sel  Selector
		pid  int
		want bool
	}{
		{"by pid", Selector{PIDs: []int{pid}}, pid, true},
		{"another pid", Selector{PIDs: []int{pid + 1}}, pid, false},
		{"by comm", Selector{Comm: re(`^gunicorn$`)}, pid, true},
		{"comm anchored elsewhere", Selector{Comm: re(`^guni$`)}, pid, false},
		{"by exe", Selector{Exe: re(`python3\.1[0-9]$`)}, pid, true},
		{"by command line, across arguments", Selector{Cmdline: re(`-m gunicorn app:`)}, pid, true},
		{"any criterion", Selector{Comm: re(`nginx`), Cmdline: re(`gunicorn`)}, pid, true},
		{"no criterion matches", Selector{Comm: re(`nginx`), Exe: re(`nginx`), Cmdline: re(`nginx`)}, pid, false},
		{"a process gone", Selector{Comm: re(`.`), Exe: re(`.`), Cmdline: re(`.`)}, pid + 1, false},
		{"never snag itself", Selector{PIDs: []int{os.Getpid()}}, os.Getpid(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.sel.matches(p, tc.pid); got != tc.want {
				t.Errorf("matches(%d) = %v, want %v", tc.pid, got, tc.want)
			}
		})
	}
}

func TestSelectorCheck(t *testing.T) {
	p := fakeProc(t, 4242, "x", "/x")
	for _, tc := range []struct {
		name string
		sel  Selector
		ok   bool
	}{
		{"empty", Selector{}, false},
		{"a pid that exists", Selector{PIDs: []int{4242}}, true},
		{"a pid that does not", Selector{PIDs: []int{4243}}, false},
		{"a pattern", Selector{Cmdline: regexp.MustCompile(`x`)}, true},
		{"a cgroup", Selector{Cgroups: []string{"system.slice"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.sel.check(p); (err == nil) != tc.ok {
				t.Errorf("check: %v, want ok %v", err, tc.ok)
			}
		})
	}
}
