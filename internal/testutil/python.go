package testutil

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// embeddedPythons pins, per CPython minor version, a release of
// github.com/kluctl/go-embed-python: real CPython builds (from
// python-build-standalone) that the Go module proxy serves. Its 3.12
// release is refused by the proxy, so 3.12 has none.
var embeddedPythons = map[string]string{
	"3.10": "v0.0.0-3.10.16-20241219-1",
	"3.13": "v0.0.0-3.13.1-20241219-1",
	"3.14": "v0.0.0-3.14.6-20260610-1",
}

const embedModule = "github.com/kluctl/go-embed-python"

// EmbeddedPython returns the path of a python3.X binary of the given minor
// version, downloaded into the module cache with `go mod download` (the
// module is not one of snag's dependencies: go.mod and go.sum stay as they
// are) and unpacked once under the user cache directory. It skips when
// the module cannot be had, except in CI, where the proxy is reachable
// and a failure is a broken setup.
func EmbeddedPython(t testing.TB, minor string) string {
	t.Helper()
	version, ok := embeddedPythons[minor]
	if !ok {
		t.Fatalf("no embedded CPython %s pinned", minor)
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("embedded CPython builds are used on linux/amd64 only, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	skip := t.Skipf
	if InCI() {
		skip = t.Fatalf
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "snag-test-python", version)
	python := filepath.Join(dir, "bin", "python"+minor)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return python
	}
	src, err := downloadModule(version)
	if err != nil {
		skip("CPython %s: %v", minor, err)
	}
	if err := unpackPython(filepath.Join(src, "python", "internal", "data", "linux-amd64"), dir); err != nil {
		t.Fatalf("unpack CPython %s: %v", minor, err)
	}
	return python
}

// downloadModule fetches the module into the module cache and returns
// its directory. It runs outside snag's module, so that nothing is added
// to go.mod or go.sum.
func downloadModule(version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", embedModule+"@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	var res struct{ Dir, Error string }
	_ = json.Unmarshal(out.Bytes(), &res)
	switch {
	case res.Error != "":
		return "", fmt.Errorf("go mod download: %s", res.Error)
	case err != nil:
		return "", fmt.Errorf("go mod download: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	case res.Dir == "":
		return "", fmt.Errorf("go mod download: no directory in %q", out.String())
	}
	return res.Dir, nil
}

// unpackPython lays the module's files.json out in dir: each file stored
// as NAME or gzipped as NAME.gz, symlinks and permissions as listed.
func unpackPython(data, dir string) error {
	b, err := os.ReadFile(filepath.Join(data, "files.json"))
	if err != nil {
		return err
	}
	var index struct {
		Files []struct {
			Name    string      `json:"name"`
			Perm    fs.FileMode `json:"perm"`
			Symlink string      `json:"symlink"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return fmt.Errorf("files.json: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-*")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return err
		}
		if tmp, err = os.MkdirTemp(filepath.Dir(dir), ".unpack-*"); err != nil {
			return err
		}
	}
	defer os.RemoveAll(tmp)
	for _, f := range index.Files {
		to := filepath.Join(tmp, filepath.FromSlash(f.Name))
		switch {
		case f.Perm&fs.ModeDir != 0:
			err = os.MkdirAll(to, 0o755)
		case f.Symlink != "":
			err = os.Symlink(f.Symlink, to)
		default:
			err = unpackFile(filepath.Join(data, filepath.FromSlash(f.Name)), to, f.Perm.Perm()|0o600)
		}
		if err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return err
	}
	os.RemoveAll(dir) // a partial unpack of an earlier run
	return os.Rename(tmp, dir)
}

func unpackFile(from, to string, perm fs.FileMode) error {
	var r io.Reader
	in, err := os.Open(from)
	if err == nil {
		r = in
	} else if in, err = os.Open(from + ".gz"); err == nil {
		if r, err = gzip.NewReader(in); err != nil {
			in.Close()
			return fmt.Errorf("%s.gz: %w", from, err)
		}
	} else {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", to, err)
	}
	return out.Close()
}
