package procfs

import (
	"fmt"
	"os"
	"strconv"

	"github.com/snagtrace/snag/internal/cgroup"
)

// Cgroup returns pid's cgroup v2 path (cgroup.Path).
func (fs FS) Cgroup(pid int) (string, error) {
	b, err := readFile(fs.path(pid, "cgroup"))
	if err != nil {
		return "", fmt.Errorf("read cgroup of pid %d: %w", pid, err)
	}
	return cgroup.Path(b), nil
}

// PIDs lists the processes visible in the file system's root.
func (fs FS) PIDs() ([]int, error) {
	ents, err := os.ReadDir(fs.Root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
