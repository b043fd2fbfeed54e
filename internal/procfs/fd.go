package procfs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// FDTarget returns what file descriptor fd of process pid refers to: a path,
// or "socket:[INODE]", "pipe:[INODE]", "anon_inode:[eventpoll]", ….
func (fs FS) FDTarget(pid, fd int) (string, error) {
	t, err := os.Readlink(fs.path(pid, "fd", strconv.Itoa(fd)))
	if err != nil {
		return "", fmt.Errorf("read fd %d of pid %d: %w", fd, pid, err)
	}
	return t, nil
}

// FDFlags returns the open flags of file descriptor fd of process pid, from
// the octal "flags:" line of fdinfo, so O_NONBLOCK can be checked.
func (fs FS) FDFlags(pid, fd int) (uint64, error) {
	path := fs.path(pid, "fdinfo", strconv.Itoa(fd))
	b, err := readFile(path)
	if err != nil {
		return 0, fmt.Errorf("read fdinfo %d of pid %d: %w", fd, pid, err)
	}
	flags, err := parseFDInfoFlags(b)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return flags, nil
}

func parseFDInfoFlags(b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "flags:")
		if !ok {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
		if err != nil {
			return 0, fmt.Errorf("bad flags: %w", err)
		}
		return flags, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no flags line")
}

// socketInode returns the inode of a "socket:[INODE]" fd target.
func socketInode(target string) (uint64, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(s, 10, 64)
	return ino, err == nil
}
