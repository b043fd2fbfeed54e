package procfs

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

func TestParseContainer(t *testing.T) {
	const (
		id  = "3f1e2b7c9d0a4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f"
		uid = "5b8c7f2e-1d3a-4e6b-9c0d-2f4a6b8c0d1e"
	)
	tests := []struct {
		name   string
		cgroup string
		want   Container
	}{
		{"host process", "0::/user.slice/user-0.slice/session-3.scope\n", Container{}},
		{"systemd service", "0::/system.slice/ssh.service\n", Container{}},
		{"docker, systemd driver", "0::/system.slice/docker-" + id + ".scope\n", Container{ID: id}},
		{"docker, cgroupfs driver, v1", "12:pids:/docker/" + id + "\n11:memory:/docker/" + id + "\n", Container{ID: id}},
		{"podman", "0::/machine.slice/libpod-" + id + ".scope/container\n", Container{ID: id}},
		{
			"kubernetes, systemd driver, containerd",
			"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5b8c7f2e_1d3a_4e6b_9c0d_2f4a6b8c0d1e.slice/cri-containerd-" + id + ".scope\n",
			Container{ID: id, PodUID: uid},
		},
		{
			"kubernetes, cgroupfs driver, v1",
			"4:pids:/kubepods/besteffort/pod" + uid + "/" + id + "\n1:name=systemd:/kubepods/besteffort/pod" + uid + "/" + id + "\n",
			Container{ID: id, PodUID: uid},
		},
		{"kubernetes guaranteed, CRI-O", "0::/kubepods.slice/kubepods-pod5b8c7f2e_1d3a_4e6b_9c0d_2f4a6b8c0d1e.slice/crio-" + id + ".scope\n", Container{ID: id, PodUID: uid}},
		{"id too short", "0::/system.slice/docker-3f1e2b7c.scope\n", Container{}},
		{"uppercase is not an id", "0::/docker/3F1E2B7C9D0A4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B0C1D2E3F4A5B6C7D8E9F\n", Container{}},
		{"a word ending in pod is not a pod", "0::/system.slice/ipod" + uid + ".service\n", Container{}},
		{"garbage", "not a cgroup file\n\x00\n", Container{}},
		{"empty", "", Container{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseContainer([]byte(tt.cgroup)); got != tt.want {
				t.Errorf("%+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestContainerSelf reads this process's own cgroup: it must parse, and a
// missing process must say so.
func TestContainerSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/cgroup"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := Default.Container(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := Default.Container(1 << 30); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing process: err %v", err)
	}
}
