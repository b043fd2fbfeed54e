// Command gen writes the syscall number tables of package syscalls from the
// kernel UAPI headers installed on this machine (see unistd.Sources).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/snagtrace/snag/internal/syscalls/internal/unistd"
)

func main() {
	dir := flag.String("dir", ".", "directory to write the zsyscalls_*_table.go files to")
	flag.Parse()
	if err := run(context.Background(), *dir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string) error {
	for _, src := range unistd.Sources {
		t, err := unistd.Load(ctx, src)
		if err != nil {
			return fmt.Errorf("load %s: %w (on Debian: apt-get install linux-libc-dev linux-libc-dev-arm64-cross cpp)", src.Arch, err)
		}
		out, err := unistd.Render(t)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, unistd.FileName(src.Arch)), out, 0o644); err != nil {
			return fmt.Errorf("write %s table: %w", src.Arch, err)
		}
	}
	return nil
}
