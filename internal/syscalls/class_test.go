package syscalls

import "testing"

func TestClassOf(t *testing.T) {
	tests := []struct {
		name string
		want Class
	}{
		{"poll", ClassReadiness},
		{"ppoll", ClassReadiness},
		{"pselect6", ClassReadiness},
		{"epoll_pwait2", ClassReadiness},
		{"io_uring_enter", ClassReadiness},
		{"recvfrom", ClassSocketRecv},
		{"recvmmsg", ClassSocketRecv},
		{"sendmsg", ClassSocketSend},
		{"connect", ClassConnect},
		{"accept4", ClassAccept},
		{"read", ClassFileIO},
		{"pwritev2", ClassFileIO},
		{"fdatasync", ClassSync},
		{"msync", ClassSync},
		{"clock_nanosleep", ClassSleep},
		{"futex", ClassFutex},
		{"futex_waitv", ClassFutex},
		{"wait4", ClassProcWait},
		{"waitid", ClassProcWait},
		{"pause", ClassLoopOther},
		{"rt_sigtimedwait", ClassLoopOther},
		{"semtimedop", ClassLoopOther},
		{"flock", ClassLoopOther},
		{"getppid", ClassNoWait},
		{"getsockopt", ClassNoWait},
		{"restart_syscall", ClassRestart},
		{"openat", ClassOther},
		{"", ClassOther},
		{"not_a_syscall", ClassOther},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.name); got != tt.want {
			t.Errorf("ClassOf(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Every classified name that is a real syscall should exist on at least one
// arch; a typo would otherwise silently classify nothing.
func TestClassNamesExist(t *testing.T) {
	skip := map[string]bool{
		"futex_wait": true, // Linux 6.7, newer than the headers the tables come from
		"sigsuspend": true, // only on 32-bit arches; named for strace logs from them
		"_newselect": true, // i386's select, as strace names it in a 32-bit process
	}
	for name := range classes {
		if skip[name] {
			continue
		}
		_, amd := Number("amd64", name)
		_, arm := Number("arm64", name)
		if !amd && !arm {
			t.Errorf("classified %q is not a syscall on any arch", name)
		}
	}
	for name := range args {
		if skip[name] {
			continue
		}
		_, amd := Number("amd64", name)
		_, arm := Number("arm64", name)
		if !amd && !arm {
			t.Errorf("ArgsOf entry %q is not a syscall on any arch", name)
		}
	}
	for name := range fdArgs {
		_, amd := Number("amd64", name)
		_, arm := Number("arm64", name)
		if !amd && !arm {
			t.Errorf("FDArg entry %q is not a syscall on any arch", name)
		}
	}
}

func TestClassString(t *testing.T) {
	seen := map[string]Class{}
	for c := ClassOther; c <= ClassRestart; c++ {
		s := c.String()
		if s == "" {
			t.Errorf("Class(%d) has no name", c)
		}
		if prev, dup := seen[s]; dup {
			t.Errorf("Class(%d) and Class(%d) are both %q", prev, c, s)
		}
		seen[s] = c
	}
	if got := Class(200).String(); got != "class(200)" {
		t.Errorf("Class(200).String() = %q", got)
	}
}

func TestFDArg(t *testing.T) {
	tests := []struct {
		name string
		want int
	}{
		{"read", 0},
		{"recvfrom", 0},
		{"connect", 0},
		{"accept4", 0},
		{"fsync", 0},
		{"epoll_wait", 0},
		{"epoll_pwait", 0},
		{"close", 0},
		{"mmap", 4},
		{"poll", -1},
		{"ppoll", -1},
		{"select", -1},
		{"futex", -1},
		{"nanosleep", -1},
		{"openat", -1},
		{"", -1},
	}
	for _, tt := range tests {
		if got := FDArg(tt.name); got != tt.want {
			t.Errorf("FDArg(%q) = %d, want %d", tt.name, got, tt.want)
		}
	}
}
