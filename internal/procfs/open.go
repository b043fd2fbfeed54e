package procfs

import (
	"fmt"
	"os"

	"github.com/snagtrace/snag/internal/safefile"
)

// Files a traced process names (its executable, the objects in its maps)
// are hostile input: the process chose the path, and may have put a FIFO,
// a device or a symlink out of its root there. These openers go through
// safefile, which resolves inside the process's root, never blocks and
// returns only bounded regular files.

// OpenInRoot opens path as process pid sees it, resolved inside
// /proc/PID/root.
func (fs FS) OpenInRoot(pid int, path string) (*os.File, error) {
	f, err := safefile.InRoot(fs.path(pid, "root"), path, safefile.Options{})
	if err != nil {
		return nil, fmt.Errorf("open %s in pid %d: %w", path, pid, err)
	}
	return f, nil
}

// OpenExe opens the executable of process pid through /proc/PID/exe, which
// refers to the file the process runs even when it was replaced or lives
// in another mount namespace.
func (fs FS) OpenExe(pid int) (*os.File, error) {
	f, err := safefile.Link(fs.path(pid, "exe"), safefile.Options{})
	if err != nil {
		return nil, fmt.Errorf("open exe of pid %d: %w", pid, err)
	}
	return f, nil
}
