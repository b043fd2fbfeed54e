package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/testutil"
)

// What the packages install, and where in the tree it comes from.
var installed = map[string]string{
	"usr/bin/snag":                        "", // built
	"usr/lib/systemd/system/snag.service": "../systemd/snag.service",
	"etc/default/snag":                    "../systemd/snag.default",
}

// make package builds a .deb and an .rpm that install snag, its unit and
// its default file, and name the version the binary says it is.
func TestMakePackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds snag and nfpm")
	}
	testutil.RequireCommands(t,
		testutil.Command{Name: "make", Package: "make"},
		testutil.Command{Name: "dpkg", Package: "dpkg"},
		testutil.Command{Name: "rpm", Package: "rpm"})
	out := t.TempDir()
	pkg := exec.Command("make", "-C", "../..", "package", "BIN="+out, "VERSION=v9.8.7")
	if b, err := pkg.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	rpms, _ := filepath.Glob(filepath.Join(out, "*.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("make package wrote %v and %v, want one .deb and one .rpm", debs, rpms)
	}

	t.Run("deb", func(t *testing.T) {
		if v := run(t, "dpkg-deb", "--field", debs[0], "Version"); v != "9.8.7" {
			t.Errorf("deb version %q, want 9.8.7", v)
		}
		if c := run(t, "dpkg-deb", "--info", debs[0], "conffiles"); c != "/etc/default/snag" {
			t.Errorf("deb conffiles %q, want /etc/default/snag: an upgrade would overwrite the administrator's edits", c)
		}
		// Installed into a root of its own, with the maintainer scripts
		// run outside it (they reload systemd, which is not running here).
		root := t.TempDir()
		for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "dpkg", "--root="+root, "--force-script-chrootless", "--force-not-root", "-i", debs[0])
		checkInstalled(t, root)
	})
	t.Run("rpm", func(t *testing.T) {
		if v := run(t, "rpm", "-qp", "--queryformat", "%{VERSION}", rpms[0]); v != "9.8.7" {
			t.Errorf("rpm version %q, want 9.8.7", v)
		}
		if c := run(t, "rpm", "-qp", "--configfiles", rpms[0]); c != "/etc/default/snag" {
			t.Errorf("rpm config files %q, want /etc/default/snag", c)
		}
		root := t.TempDir()
		db := filepath.Join(root, "rpmdb")
		run(t, "rpm", "--root", root, "--dbpath", db, "--initdb")
		run(t, "rpm", "--root", root, "--dbpath", db, "-i", "--nodeps", "--noscripts", rpms[0])
		checkInstalled(t, root)
	})
}

func checkInstalled(t *testing.T, root string) {
	t.Helper()
	for path, src := range installed {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if src == "" {
			continue
		}
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("/%s differs from %s", path, src)
		}
	}
	if v := run(t, filepath.Join(root, "usr/bin/snag"), "version"); !strings.HasPrefix(v, "snag v9.8.7 ") {
		t.Errorf("installed snag says %q, want snag v9.8.7", v)
	}
}

// run runs a command and returns its standard output, trimmed.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
