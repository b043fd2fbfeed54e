package procfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestContainerID(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		name, cgroup, want string
	}{
		{"docker systemd", "0::/system.slice/docker-" + id + ".scope\n", id[:12]},
		{"containerd in a pod", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + id + ".scope\n", id[:12]},
		{"cri-o", "0::/kubepods.slice/crio-" + id + ".scope\n", id[:12]},
		{"podman", "0::/user.slice/user-1000.slice/libpod-" + id + ".scope/container\n", id[:12]},
		{"cgroupfs driver", "0::/kubepods/burstable/pod1234/" + id + "\n", id[:12]},
		{"cgroup v1", "12:pids:/docker/" + id + "\n11:memory:/docker/" + id + "\n", id[:12]},
		{"a service", "0::/system.slice/mariadb.service\n", ""},
		{"a session", "0::/user.slice/user-0.slice/session-3.scope\n", ""},
		{"short hex", "0::/docker/0123456789ab\n", ""},
		{"upper case", "0::/docker/" + strings.ToUpper(id) + "\n", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ContainerID(tc.cgroup); got != tc.want {
				t.Errorf("ContainerID(%q) = %q, want %q", tc.cgroup, got, tc.want)
			}
		})
	}
}

func TestContainer(t *testing.T) {
	root := t.TempDir()
	id := strings.Repeat("ab", 32)
	if err := os.MkdirAll(filepath.Join(root, "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "7", "cgroup"), []byte("0::/system.slice/docker-"+id+".scope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := FS{Root: root}
	if got := fs.Container(7); got != id[:12] {
		t.Errorf("Container(7) = %q, want %q", got, id[:12])
	}
	if got := fs.Container(8); got != "" {
		t.Errorf("Container of a missing process = %q, want \"\"", got)
	}
}
