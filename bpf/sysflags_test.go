package bpf

import (
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/syscalls"
)

// The kernel side's per-syscall flags come from internal/syscalls' table;
// these are the calls whose arguments it decodes.
func TestSysFlags(t *testing.T) {
	want := map[string]snagSysFlag{
		"connect": snagSysFlagSYS_CONNECT, "accept": snagSysFlagSYS_ACCEPT, "accept4": snagSysFlagSYS_ACCEPT,
		"bind": snagSysFlagSYS_BIND, "sendto": snagSysFlagSYS_SENDTO | snagSysFlagSYS_PEEK, "sendmsg": snagSysFlagSYS_SENDMSG,
		"poll": snagSysFlagSYS_POLL, "ppoll": snagSysFlagSYS_PPOLL,
		"epoll_wait": snagSysFlagSYS_EPOLL, "epoll_pwait": snagSysFlagSYS_EPOLL, "epoll_pwait2": snagSysFlagSYS_EPOLL,
		"select": snagSysFlagSYS_SELECT, "pselect6": snagSysFlagSYS_SELECT,
		"read": snagSysFlagSYS_PEEK, "write": snagSysFlagSYS_PEEK, "recvfrom": snagSysFlagSYS_PEEK,
		"close": snagSysFlagSYS_CLOSE, "open": snagSysFlagSYS_OPEN, "creat": snagSysFlagSYS_OPEN,
		"openat": snagSysFlagSYS_OPENAT, "openat2": snagSysFlagSYS_OPENAT,
		"clone": snagSysFlagSYS_FORK, "clone3": snagSysFlagSYS_FORK, "fork": snagSysFlagSYS_FORK, "vfork": snagSysFlagSYS_FORK,
		"getpid": 0, "io_uring_enter": 0, "recvmsg": 0,
	}
	for name, w := range want {
		if got := sysFlags(syscalls.ArgsOf(name)); got != uint32(w) {
			t.Errorf("%s: flags %#x, want %#x", name, got, uint32(w))
		}
	}
}

// Which calls the kernel side counts without timing: never-waiting ones
// that need no decoding, unless every call is timed or is an event.
func TestUntimed(t *testing.T) {
	def := Options{Threshold: 10 * time.Millisecond}
	for _, tc := range []struct {
		name string
		opts Options
		want bool
	}{
		{"getppid", def, true},
		{"clock_gettime", def, true},
		{"epoll_ctl", def, true},
		{"bind", def, false},  // no-wait, but its address is an event
		{"read", def, false},  // waits
		{"futex", def, false}, // waits
		{"close", def, false}, // can wait, and is an fd event
		{"getppid", Options{Threshold: 10 * time.Millisecond, TimeAll: true}, false},
		{"getppid", Options{}, false}, // threshold 0: every call is an event, with its duration
	} {
		if got := Untimed(tc.name, tc.opts); got != tc.want {
			t.Errorf("Untimed(%q, %+v) = %v, want %v", tc.name, tc.opts, got, tc.want)
		}
	}
}
