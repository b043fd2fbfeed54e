package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestGeneratedUpToDate rebuilds the BPF objects from the C sources with
// the generate line of gen.go and fails when the committed output differs.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles BPF programs")
	}
	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("clang not installed: cannot check the committed BPF objects")
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skip("libbpf-dev not installed")
	}
	gen, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^//go:generate go tool bpf2go (.*)$`).FindSubmatch(gen)
	if m == nil {
		t.Fatal("no go:generate line in gen.go")
	}
	dir := t.TempDir()
	args := append([]string{"tool", "bpf2go", "-output-dir", dir}, splitArgs(string(m[1]))...)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go: %v\n%s", err, out)
	}
	for _, f := range []string{"snag_x86_bpfel.o", "snag_arm64_bpfel.o", "snag_x86_bpfel.go", "snag_arm64_bpfel.go"} {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh build of the C sources: run make generate and commit the result", f)
		}
	}
}

func splitArgs(s string) []string {
	var out []string
	for _, f := range regexp.MustCompile(`\s+`).Split(s, -1) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}
