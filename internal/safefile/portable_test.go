package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// openByStat, Open away from Linux, takes regular files and refuses the rest.
func TestOpenByStat(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "trace.log")
	if err := os.WriteFile(file, []byte("1234 10:00:00.000000 getpid() = 1 <0.000001>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openByStat(file, Options{})
	if err != nil {
		t.Fatalf("regular file: %v", err)
	}
	f.Close()
	if _, err := openByStat(dir, Options{}); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory: got %v, want ErrNotRegular", err)
	}
	if _, err := openByStat(file, Options{MaxSize: 8}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over MaxSize: got %v, want ErrTooLarge", err)
	}
	if _, err := openByStat(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want ErrNotExist", err)
	}
}
