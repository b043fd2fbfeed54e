package cpython

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOffsetsUpToDate regenerates the offsets of each version whose
// headers are installed and fails when the committed table differs.
func TestOffsetsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles against the CPython headers")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	for _, v := range []string{"3.10", "3.11", "3.12"} {
		t.Run(v, func(t *testing.T) {
			name := "zoffsets_" + strings.ReplaceAll(v, ".", "") + ".go"
			out := filepath.Join(t.TempDir(), name)
			b, err := exec.Command("go", "run", "./internal/genoffsets", "-version", v, "-out", out).CombinedOutput()
			if err != nil {
				t.Fatalf("genoffsets: %v\n%s", err, b)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Skipf("no CPython %s headers here: %s", v, bytes.TrimSpace(b))
			}
			want, _ := os.ReadFile(name)
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the installed headers: run make generate and commit the result", name)
			}
		})
	}
}
