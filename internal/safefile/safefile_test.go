//go:build linux

package safefile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hostileRoot builds a directory standing in for a target's root: files a
// target controls, with a secret outside it that no lookup may reach.
func hostileRoot(t *testing.T) (root, secret string) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "root")
	secret = filepath.Join(dir, "secret")
	must(t, os.WriteFile(secret, []byte("outside"), 0o600))
	must(t, os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "usr/lib/libok.so"), []byte("inside"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "secret"), []byte("root's own"), 0o644))
	must(t, unix.Mkfifo(filepath.Join(root, "usr/lib/fifo.so"), 0o644))
	must(t, os.Symlink("libok.so", filepath.Join(root, "usr/lib/rel.so")))
	must(t, os.Symlink(secret, filepath.Join(root, "usr/lib/abs.so")))                          // absolute: means root/…/secret for the target
	must(t, os.Symlink("../../../../../../../../secret", filepath.Join(root, "usr/lib/up.so"))) // climbs: stops at root
	must(t, os.Symlink("/usr/lib/nothere", filepath.Join(root, "usr/lib/dangling.so")))
	must(t, os.Symlink("loop2.so", filepath.Join(root, "usr/lib/loop1.so")))
	must(t, os.Symlink("loop1.so", filepath.Join(root, "usr/lib/loop2.so")))
	must(t, os.Symlink("/usr/lib", filepath.Join(root, "lib")))
	big := filepath.Join(root, "usr/lib/sparse.so")
	must(t, os.WriteFile(big, nil, 0o644))
	must(t, os.Truncate(big, MaxSize+1))
	return root, secret
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestInRoot(t *testing.T) {
	for _, openat2 := range []bool{true, false} {
		name := "openat2"
		if !openat2 {
			name = "walk"
		}
		t.Run(name, func(t *testing.T) {
			defer func(v bool) { useOpenat2 = v }(useOpenat2)
			useOpenat2 = openat2
			root, secret := hostileRoot(t)
			if os.Getuid() == 0 {
				must(t, unix.Mknod(filepath.Join(root, "usr/lib/zero.so"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))))
			}
			for _, tc := range []struct {
				path string
				want string // content, or "" when err is wanted
				err  error
			}{
				{"/usr/lib/libok.so", "inside", nil},
				{"usr/lib/libok.so", "inside", nil},
				{"/usr/lib/rel.so", "inside", nil},
				{"/lib/libok.so", "inside", nil},
				{"/usr/lib/../../secret", "root's own", nil},
				{"/../../../secret", "root's own", nil},
				{"/usr/lib/abs.so", "", os.ErrNotExist}, // root has no copy of the host's path
				{"/usr/lib/up.so", "root's own", nil},
				{"/usr/lib/dangling.so", "", os.ErrNotExist},
				{"/usr/lib/loop1.so", "", unix.ELOOP},
				{"/usr/lib/fifo.so", "", ErrNotRegular},
				{"/usr/lib/sparse.so", "", ErrTooLarge},
				{"/usr/lib", "", ErrNotRegular},
				{"/usr/lib/libok.so/x", "", unix.ENOTDIR},
			} {
				start := time.Now()
				f, err := InRoot(root, tc.path, Options{})
				if time.Since(start) > time.Second {
					t.Errorf("%s: took %s", tc.path, time.Since(start))
				}
				if tc.err != nil {
					if !errors.Is(err, tc.err) {
						t.Errorf("%s: err %v, want %v", tc.path, err, tc.err)
					}
					if f != nil {
						f.Close()
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", tc.path, err)
					continue
				}
				b, _ := io.ReadAll(f)
				f.Close()
				if string(b) != tc.want {
					t.Errorf("%s: read %q, want %q", tc.path, b, tc.want)
				}
			}
			// The absolute symlink must not have reached the host's secret.
			if f, err := InRoot(root, "/usr/lib/abs.so", Options{}); err == nil {
				b, _ := io.ReadAll(f)
				f.Close()
				t.Errorf("absolute symlink resolved outside the root: read %q (secret %s)", b, secret)
			}
			if os.Getuid() == 0 {
				if _, err := InRoot(root, "/usr/lib/zero.so", Options{}); !errors.Is(err, ErrNotRegular) {
					t.Errorf("character device: err %v, want ErrNotRegular", err)
				}
			}
		})
	}
}

func TestInRootRefusesMagicLinks(t *testing.T) {
	// /proc/self/exe is a magic link: with openat2 it is refused outright.
	if _, err := InRoot("/", "/proc/self/exe", Options{}); !errors.Is(err, unix.ELOOP) {
		t.Errorf("magic link: err %v, want ELOOP", err)
	}
}

func TestOpenInputs(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	must(t, unix.Mkfifo(fifo, 0o644))
	reg := filepath.Join(dir, "log")
	must(t, os.WriteFile(reg, []byte("x"), 0o644))
	big := filepath.Join(dir, "big")
	must(t, os.WriteFile(big, nil, 0o644))
	must(t, os.Truncate(big, MaxSize+1))

	start := time.Now()
	if _, err := Open(fifo, Options{}); !errors.Is(err, ErrNotRegular) {
		t.Errorf("fifo: err %v, want ErrNotRegular", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("fifo took %s", time.Since(start))
	}
	for _, p := range []string{reg, big} { // inputs have no size bound
		f, err := Open(p, Options{})
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		f.Close()
	}
	if _, err := Open(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: err %v", err)
	}
	if _, err := Open("/dev/null", Options{}); !errors.Is(err, ErrNotRegular) {
		t.Errorf("/dev/null: err %v, want ErrNotRegular", err)
	}
}

func TestWithTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	start := time.Now()
	_, err := withTimeout(50*time.Millisecond, "stuck", func() (*os.File, error) {
		<-block
		return nil, errors.New("late")
	})
	if !errors.Is(err, ErrTimeout) || time.Since(start) > time.Second {
		t.Errorf("err %v after %s, want ErrTimeout at once", err, time.Since(start))
	}
}

func TestReaderBudget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(path, make([]byte, 1000), 0o644))
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	r, err := NewReader(f, 600, time.Minute)
	must(t, err)
	buf := make([]byte, 500)
	if n, err := r.ReadAt(buf, 0); n != 500 || err != nil {
		t.Fatalf("first read: %d, %v", n, err)
	}
	if _, err := r.ReadAt(buf, 500); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over budget: err %v, want ErrTooLarge", err)
	}
	r.SetBudget(1 << 20)
	if n, err := r.ReadAt(buf, 800); n != 200 || err != io.EOF {
		t.Errorf("read at the end: %d, %v; want 200, EOF", n, err)
	}
	if _, err := r.ReadAt(buf, 1000); err != io.EOF {
		t.Errorf("read past the end: %v", err)
	}
	r.deadline = time.Now().Add(-time.Second)
	if _, err := r.ReadAt(buf, 0); !errors.Is(err, ErrTimeout) {
		t.Errorf("past the deadline: err %v", err)
	}
}
