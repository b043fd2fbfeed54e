package cpython

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOffsetsUpToDate regenerates the offsets from the installed headers
// and fails when the committed table differs.
func TestOffsetsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles against the CPython headers")
	}
	if _, err := os.Stat("/usr/include/python3.11/internal/pycore_frame.h"); err != nil {
		t.Skip("python3.11-dev not installed")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	out := filepath.Join(t.TempDir(), "zoffsets.go")
	if b, err := exec.Command("go", "run", "./internal/genoffsets", "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("genoffsets: %v\n%s", err, b)
	}
	got, _ := os.ReadFile(out)
	want, _ := os.ReadFile("zoffsets.go")
	if !bytes.Equal(got, want) {
		t.Errorf("zoffsets.go differs from the installed headers: run make generate and commit the result")
	}
}
