package stracelog

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// errnos maps the errno names strace prints to their numbers.
var errnos = func() map[string]int64 {
	m := make(map[string]int64, 160)
	for i := 1; i <= 133; i++ {
		if name := unix.ErrnoName(syscall.Errno(i)); name != "" {
			m[name] = int64(i)
		}
	}
	// Aliases, and the kernel-internal codes strace shows for interrupted
	// calls (include/linux/errno.h); they never reach user space but do
	// appear as the return of a syscall a signal cut short.
	for name, nr := range map[string]int64{
		"EWOULDBLOCK": 11, "EDEADLOCK": 35, "ENOTSUP": 95,
		"ERESTARTSYS": 512, "ERESTARTNOINTR": 513, "ERESTARTNOHAND": 514,
		"ENOIOCTLCMD": 515, "ERESTART_RESTARTBLOCK": 516, "EPROBE_DEFER": 517,
		"EOPENSTALE": 518, "ENOPARAM": 519, "EBADHANDLE": 521, "ENOTSYNC": 522,
		"EBADCOOKIE": 523, "ENOTSUPP": 524, "ETOOSMALL": 525, "ESERVERFAULT": 526,
		"EBADTYPE": 527, "EJUKEBOX": 528, "EIOCBQUEUED": 529, "ERECALLCONFLICT": 530,
	} {
		if _, ok := m[name]; !ok {
			m[name] = nr
		}
	}
	return m
}()

// signalNumber returns the number of a signal name such as "SIGKILL", or 0.
func signalNumber(name string) int {
	return int(unix.SignalNum(name))
}
