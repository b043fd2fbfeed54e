//go:build linux

package safefile

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// InRoot opens name, an absolute path as the process whose root directory
// is root sees it (root is typically /proc/PID/root), for reading. Symlinks
// resolve inside root, as they would for the process; magic links such as
// /proc/self/fd/N are refused.
func InRoot(root, name string, opt Options) (*os.File, error) {
	return withTimeout(opt.timeout(), name, func() (*os.File, error) {
		rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: root, Err: err}
		}
		defer unix.Close(rootfd)
		pfd, err := resolveInRoot(rootfd, name)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return reopen(pfd, name, opt)
	})
}

// Link opens the file a kernel-made link names, such as
// /proc/PID/map_files/START-END or /proc/PID/exe: the link is the kernel's
// word for which file it is, so it is followed, and the file is checked as
// InRoot checks it.
func Link(name string, opt Options) (*os.File, error) {
	return withTimeout(opt.timeout(), name, func() (*os.File, error) {
		pfd, err := unix.Open(name, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return reopen(pfd, name, opt)
	})
}

// Open opens an input the user named (a log, a recording, a list of
// peers) and refuses anything but a regular file: reading a FIFO or a
// terminal would wait for a writer that may never come, and Ctrl-C could
// not end it. Symlinks are followed: the user chose the path.
func Open(name string, opt Options) (*os.File, error) {
	if opt.MaxSize == 0 {
		opt.MaxSize = -1
	}
	return withTimeout(opt.timeout(), name, func() (*os.File, error) {
		pfd, err := unix.Open(name, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return reopen(pfd, name, opt)
	})
}

// reopen checks the O_PATH handle pfd (and closes it) and opens the file
// it names for reading.
func reopen(pfd int, name string, opt Options) (*os.File, error) {
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if err := check(&st, name, opt); err != nil {
		return nil, err
	}
	if !opt.AllowFUSE {
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(pfd, &sfs); err == nil && sfs.Type == unix.FUSE_SUPER_MAGIC {
			return nil, &os.PathError{Op: "open", Path: name, Err: ErrFUSE}
		}
	}
	// Reopening through /proc/self/fd opens the very inode checked above;
	// a path lookup now could meet a different file.
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	var st2 unix.Stat_t
	if err := unix.Fstat(fd, &st2); err != nil || st2.Dev != st.Dev || st2.Ino != st.Ino {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("file changed while opening")}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func check(st *unix.Stat_t, name string, opt Options) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kind(st.Mode))}
	}
	if st.Size > opt.maxSize() {
		return &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: %d bytes, more than the %d snag reads", ErrTooLarge, st.Size, opt.maxSize())}
	}
	return nil
}

func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symlink"
	}
	return "not a file"
}

// useOpenat2 is cleared by tests to exercise the manual walk.
var useOpenat2 = true

// resolveInRoot returns an O_PATH fd of name resolved inside rootfd.
func resolveInRoot(rootfd int, name string) (int, error) {
	if useOpenat2 {
		for range 8 { // EAGAIN: a rename raced the lookup; try again
			fd, err := unix.Openat2(rootfd, name, &unix.OpenHow{
				Flags:   unix.O_PATH | unix.O_CLOEXEC,
				Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
			})
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != unix.ENOSYS && err != unix.EPERM { // EPERM: a seccomp filter that predates openat2
				return fd, err
			}
			break
		}
	}
	return walkInRoot(rootfd, name)
}

// maxLinks bounds the symlinks one lookup follows, as the kernel does.
const maxLinks = 40

// walkInRoot resolves name under rootfd one component at a time, as
// openat2 RESOLVE_IN_ROOT does: no component is followed as a symlink by
// the kernel; symlinks are read and resolved here, absolute ones against
// rootfd, and ".." never climbs above it. It holds an fd for each directory
// on the way, so ".." returns to the directory it came through even if the
// target renames things meanwhile.
func walkInRoot(rootfd int, name string) (int, error) {
	root, err := unix.Dup(rootfd)
	if err != nil {
		return -1, err
	}
	stack := []int{root} // stack[0] is the root, the top is the current directory
	defer func() {
		for _, fd := range stack {
			unix.Close(fd)
		}
	}()
	rest := strings.Split(name, "/")
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				unix.Close(stack[len(stack)-1])
				stack = stack[:len(stack)-1]
			}
			continue
		}
		fd, err := unix.Openat(stack[len(stack)-1], c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			links++
			target, err := readlinkFD(fd)
			unix.Close(fd)
			if err != nil {
				return -1, err
			}
			if links > maxLinks {
				return -1, unix.ELOOP
			}
			if path.IsAbs(target) {
				for _, d := range stack[1:] {
					unix.Close(d)
				}
				stack = stack[:1]
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		}
		stack = append(stack, fd)
	}
	if len(stack) == 1 {
		return unix.Dup(stack[0])
	}
	fd := stack[len(stack)-1]
	stack = stack[:len(stack)-1]
	return fd, nil
}

func readlinkFD(fd int) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= 4096 {
			return "", unix.ENAMETOOLONG
		}
		buf = make([]byte, 2*len(buf))
	}
}
