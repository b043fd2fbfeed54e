package cgroup

import "testing"

const (
	ctrID = "3f1c9e6a7b2d4c8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f"
	podID = "0e2f6b1d-5c3a-4b7e-9d8f-1a2b3c4d5e6f"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"v2 only", "0::/system.slice/nginx.service\n", "/system.slice/nginx.service"},
		{"hybrid: the v2 line wins", "12:pids:/docker/" + ctrID + "\n1:name=systemd:/docker/" + ctrID + "\n0::/\n", "/"},
		{"v1 only: the systemd hierarchy", "4:memory:/docker/" + ctrID + "\n1:name=systemd:/system.slice/docker-" + ctrID + ".scope\n", "/system.slice/docker-" + ctrID + ".scope"},
		{"v1 only, no systemd: the first", "4:memory:/docker/" + ctrID + "\n3:cpu:/\n", "/docker/" + ctrID},
		{"a colon in the path", "0::/a:b\n", "/a:b"},
		{"garbage", "nonsense\n", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Path([]byte(tc.in)); got != tc.want {
				t.Errorf("Path(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestName(t *testing.T) {
	podSlice := "pod" + "0e2f6b1d_5c3a_4b7e_9d8f_1a2b3c4d5e6f" + ".slice"
	for _, tc := range []struct {
		name, path string
		want       Names
	}{
		{"containerd under a burstable pod",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-" + podSlice + "/cri-containerd-" + ctrID + ".scope",
			Names{Container: ctrID, Runtime: "containerd", Pod: podID}},
		{"CRI-O under a besteffort pod",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-" + podSlice + "/crio-" + ctrID + ".scope",
			Names{Container: ctrID, Runtime: "cri-o", Pod: podID}},
		{"CRI-O's monitor is no container",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-" + podSlice + "/crio-conmon-" + ctrID + ".scope",
			Names{Pod: podID}},
		{"a guaranteed pod",
			"/kubepods.slice/kubepods-" + podSlice + "/cri-containerd-" + ctrID + ".scope",
			Names{Container: ctrID, Runtime: "containerd", Pod: podID}},
		{"a process nested in a container's cgroup",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-" + podSlice + "/cri-containerd-" + ctrID + ".scope/init",
			Names{Container: ctrID, Runtime: "containerd", Pod: podID}},
		{"kubernetes with the cgroupfs driver",
			"/kubepods/burstable/pod" + podID + "/" + ctrID,
			Names{Container: ctrID, Pod: podID}},
		{"docker with systemd", "/system.slice/docker-" + ctrID + ".scope",
			Names{Container: ctrID, Runtime: "docker"}},
		{"docker with cgroupfs", "/docker/" + ctrID, Names{Container: ctrID, Runtime: "docker"}},
		{"podman", "/machine.slice/libpod-" + ctrID + ".scope/container", Names{Container: ctrID, Runtime: "podman"}},
		{"a system service", "/system.slice/nginx.service", Names{Unit: "nginx.service"}},
		{"a templated service", "/system.slice/system-getty.slice/getty@tty1.service", Names{Unit: "getty@tty1.service"}},
		{"a user's service", "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-2211.scope",
			Names{Unit: "app-gnome-firefox-2211.scope"}},
		{"a login session", "/user.slice/user-1000.slice/session-3.scope", Names{Unit: "session-3.scope"}},
		{"a user manager", "/user.slice/user-1000.slice/user@1000.service/init.scope", Names{Unit: "init.scope"}},
		{"the root", "/", Names{}},
		{"a bare cgroup", "/snag-test", Names{}},
		{"a short id is no container", "/docker/abc123", Names{}},
		{"a scope with a non-hex id", "/system.slice/docker-" + ctrID[:63] + "z.scope", Names{Unit: "docker-" + ctrID[:63] + "z.scope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Name(tc.path); got != tc.want {
				t.Errorf("Name(%q) = %+v, want %+v", tc.path, got, tc.want)
			}
		})
	}
}
