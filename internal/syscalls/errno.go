package syscalls

import "strconv"

type errnoInfo struct{ name, text string }

var errnoByName = func() map[string]int64 {
	m := make(map[string]int64, len(linuxErrnos)+24)
	for nr, e := range linuxErrnos {
		if e.name != "" {
			m[e.name] = int64(nr)
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

// ErrnoNumber returns the Linux number of an errno name as strace prints
// it ("ECONNREFUSED", "ERESTARTSYS").
func ErrnoNumber(name string) (int64, bool) {
	nr, ok := errnoByName[name]
	return nr, ok
}

// ErrnoName returns the name of Linux errno nr ("ECONNREFUSED"), or "".
func ErrnoName(nr int64) string {
	if nr > 0 && nr < int64(len(linuxErrnos)) {
		return linuxErrnos[nr].name
	}
	return ""
}

// ErrnoText describes Linux errno nr as strerror does ("connection
// refused").
func ErrnoText(nr int64) string {
	if nr > 0 && nr < int64(len(linuxErrnos)) && linuxErrnos[nr].text != "" {
		return linuxErrnos[nr].text
	}
	return "errno " + strconv.FormatInt(nr, 10)
}

// SignalNumber returns the Linux number of a signal name such as
// "SIGKILL", or 0.
func SignalNumber(name string) int {
	for nr, s := range linuxSignals {
		if s != "" && s == name {
			return nr
		}
	}
	return 0
}
