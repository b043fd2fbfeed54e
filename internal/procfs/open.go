package procfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Files a traced process names (its executable, the objects in its maps)
// are hostile input: the process chose the path, and may have put a FIFO,
// a device or a symlink out of its root there. These openers never block
// on open (O_NONBLOCK), resolve inside the process's root and return only
// regular files.

// ErrNotRegular reports a file that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

const openFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY

// OpenInRoot opens path as process pid sees it: resolved inside
// /proc/PID/root, so symlinks (absolute ones too) cannot leave the
// process's root, without blocking and only if it is a regular file.
// Where openat2 is missing it falls back to opening Root/PID/root/path.
func (fs FS) OpenInRoot(pid int, path string) (*os.File, error) {
	root := fs.path(pid, "root")
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root of pid %d: %w", pid, err)
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, path, &unix.OpenHow{
		Flags:   openFlags,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		// No openat2 (before 5.6, or a seccomp filter): the plain path.
		fd, err = unix.Open(root+"/"+path, openFlags, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in pid %d: %w", path, pid, err)
	}
	return regular(fd, path)
}

// OpenExe opens the executable of process pid through /proc/PID/exe, which
// refers to the file the process runs even when it was replaced or lives
// in another mount namespace.
func (fs FS) OpenExe(pid int) (*os.File, error) {
	path := fs.path(pid, "exe")
	fd, err := unix.Open(path, openFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("open exe of pid %d: %w", pid, err)
	}
	return regular(fd, "exe of pid "+strconv.Itoa(pid))
}

// regular wraps fd as a file if it is a regular one, and closes it
// otherwise.
func regular(fd int, name string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	return os.NewFile(uintptr(fd), name), nil
}
