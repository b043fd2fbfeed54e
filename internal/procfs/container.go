package procfs

import (
	"bytes"
	"fmt"
	"strings"
)

// Container names the container a process runs in, as its cgroup path tells
// it; both fields are empty for a process outside any container.
type Container struct {
	ID     string // the runtime's 64-hex container id (docker, containerd, CRI-O, podman)
	PodUID string // the Kubernetes pod's UID, for a container in a pod
}

// Container reads /proc/PID/cgroup and names the process's container.
func (fs FS) Container(pid int) (Container, error) {
	b, err := readFile(fs.path(pid, "cgroup"))
	if err != nil {
		return Container{}, fmt.Errorf("read cgroup of pid %d: %w", pid, err)
	}
	return ParseContainer(b), nil
}

// containerPrefixes start the cgroup directory of a container under the
// systemd cgroup driver ("docker-ID.scope"); the cgroupfs driver names the
// directory by the bare id.
var containerPrefixes = []string{"docker-", "cri-containerd-", "crio-", "libpod-", "containerd-"}

// ParseContainer reads the container id and pod UID from the contents of
// /proc/PID/cgroup, cgroup v2 ("0::/path") or v1 ("N:controllers:/path"),
// under either cgroup driver:
//
//	0::/system.slice/docker-ID.scope
//	0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podUID_WITH_UNDERSCORES.slice/cri-containerd-ID.scope
//	4:pids:/kubepods/besteffort/podUID/ID
func ParseContainer(cgroup []byte) Container {
	var c Container
	for line := range bytes.Lines(cgroup) {
		_, path, ok := strings.Cut(strings.TrimSpace(string(line)), ":")
		if !ok {
			continue
		}
		if _, path, ok = strings.Cut(path, ":"); !ok {
			continue
		}
		for dir := range strings.SplitSeq(path, "/") {
			dir = strings.TrimSuffix(strings.TrimSuffix(dir, ".scope"), ".slice")
			if id := containerID(dir); id != "" && c.ID == "" {
				c.ID = id
			}
			if uid := podUID(dir); uid != "" && c.PodUID == "" {
				c.PodUID = uid
			}
		}
		if c.ID != "" {
			break
		}
	}
	return c
}

func containerID(dir string) string {
	for _, p := range containerPrefixes {
		if s, ok := strings.CutPrefix(dir, p); ok {
			dir = s
			break
		}
	}
	if len(dir) != 64 || strings.Trim(dir, "0123456789abcdef") != "" {
		return ""
	}
	return dir
}

// podUID finds the UID in "podUID" or, under the systemd driver,
// "kubepods-QOS-podUID" with underscores for dashes.
func podUID(dir string) string {
	i := strings.LastIndex(dir, "pod")
	if i < 0 || (i > 0 && dir[i-1] != '-') {
		return ""
	}
	uid := strings.ReplaceAll(dir[i+len("pod"):], "_", "-")
	if len(uid) != 36 || strings.Trim(uid, "0123456789abcdef-") != "" || strings.Count(uid, "-") != 4 {
		return ""
	}
	return uid
}
