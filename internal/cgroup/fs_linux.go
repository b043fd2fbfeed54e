//go:build linux

package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount finds where cgroup v2 is mounted: /sys/fs/cgroup on most hosts,
// /sys/fs/cgroup/unified beside v1 hierarchies.
func Mount() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// ID parent major:minor root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if f := strings.Fields(pre); len(f) >= 5 {
			return f[4], nil
		}
	}
	return "", errors.New("no cgroup2 file system mounted: cgroups cannot be selected on this host")
}

// Resolve turns a cgroup given by the user into its directory: an
// absolute path on the cgroup2 file system, else a path relative to its
// mount ("system.slice/nginx.service", or "/system.slice/nginx.service"
// as /proc/PID/cgroup writes it).
func Resolve(mount, path string) (string, error) {
	dir := path
	if !filepath.IsAbs(path) || !strings.HasPrefix(filepath.Clean(path)+"/", mount+"/") {
		dir = filepath.Join(mount, path)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "", fmt.Errorf("cgroup %s: %w (give a directory under %s)", path, err, mount)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return "", fmt.Errorf("cgroup %s: %s is not on the cgroup2 file system mounted at %s", path, dir, mount)
	}
	return dir, nil
}

// ID is the id of the cgroup at dir, as bpf_get_current_cgroup_id
// returns it: the inode number of its directory.
func ID(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", dir, err)
	}
	return st.Ino, nil
}

// Walk calls fn with dir and every cgroup below it, with their ids.
// Cgroups removed during the walk are skipped.
func Walk(dir string, fn func(dir string, id uint64)) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != dir {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if id, err := ID(path); err == nil {
			fn(path, id)
		}
		return nil
	})
}

// Procs lists the processes in the cgroup at dir, not below it.
func Procs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("processes of cgroup %s: %w", dir, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
