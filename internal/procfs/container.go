package procfs

import (
	"os"
	"strings"
)

// Container returns the short ID (12 hex digits, as docker ps shows it)
// of the container pid runs in, read from its cgroup v2 path, or "" when
// the path names no container runtime's scope.
func (fs FS) Container(pid int) string {
	b, err := os.ReadFile(fs.path(pid, "cgroup"))
	if err != nil {
		return ""
	}
	return ContainerID(string(b))
}

// containerPrefixes name the scopes container runtimes create under
// systemd ("docker-ID.scope", "cri-containerd-ID.scope", "crio-ID.scope",
// "libpod-ID.scope"); with the cgroupfs driver the ID is a directory of
// its own ("/docker/ID", "/kubepods/burstable/podUID/ID").
var containerPrefixes = []string{"docker-", "cri-containerd-", "crio-", "libpod-", ""}

// ContainerID finds the container ID in the contents of /proc/PID/cgroup:
// the innermost path component that is a 64-digit hex ID, bare or in a
// runtime's scope.
func ContainerID(cgroup string) string {
	for _, line := range strings.Split(cgroup, "\n") {
		// cgroup v2: "0::/path"; under v1 every controller has a line,
		// and the IDs agree.
		_, path, ok := strings.Cut(line, "::")
		if !ok {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			path = parts[2]
		}
		elems := strings.Split(path, "/")
		for i := len(elems) - 1; i >= 0; i-- {
			e := strings.TrimSuffix(elems[i], ".scope")
			for _, p := range containerPrefixes {
				if id, ok := strings.CutPrefix(e, p); ok && isContainerID(id) {
					return id[:12]
				}
			}
		}
	}
	return ""
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
