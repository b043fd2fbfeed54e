package syscalls

import "strconv"

// Class groups syscalls by the kind of wait they represent.
type Class uint8

const (
	ClassOther      Class = iota
	ClassReadiness        // poll ppoll select _newselect pselect6 epoll_wait epoll_pwait epoll_pwait2 io_uring_enter
	ClassSocketRecv       // recvfrom recvmsg recvmmsg
	ClassSocketSend       // sendto sendmsg sendmmsg
	ClassConnect          // connect
	ClassAccept           // accept accept4
	ClassFileIO           // read write and their vector/positional forms; the fd may be a socket too
	ClassSync             // fsync fdatasync sync syncfs sync_file_range msync
	ClassSleep            // nanosleep clock_nanosleep
	ClassFutex            // futex futex_waitv futex_wait
	ClassProcWait         // wait4 waitid
	ClassLoopOther        // other blocking waits worth naming: pause, sigsuspend, flock, SysV IPC
	ClassNoWait           // calls that never wait (socket options, ids, epoll_ctl, …): a slow one was preempted
	ClassRestart          // restart_syscall: resumes an interrupted call, whose kind it does not tell
)

var classNames = [...]string{
	ClassOther:      "other",
	ClassReadiness:  "readiness",
	ClassSocketRecv: "socket-recv",
	ClassSocketSend: "socket-send",
	ClassConnect:    "connect",
	ClassAccept:     "accept",
	ClassFileIO:     "file-io",
	ClassSync:       "sync",
	ClassSleep:      "sleep",
	ClassFutex:      "futex",
	ClassProcWait:   "proc-wait",
	ClassLoopOther:  "blocking-other",
	ClassNoWait:     "no-wait",
	ClassRestart:    "restart",
}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

var classes = map[string]Class{
	"poll": ClassReadiness, "ppoll": ClassReadiness,
	"select": ClassReadiness, "_newselect": ClassReadiness, "pselect6": ClassReadiness,
	"epoll_wait": ClassReadiness, "epoll_pwait": ClassReadiness, "epoll_pwait2": ClassReadiness,
	"io_uring_enter": ClassReadiness,

	"recvfrom": ClassSocketRecv, "recvmsg": ClassSocketRecv, "recvmmsg": ClassSocketRecv,
	"sendto": ClassSocketSend, "sendmsg": ClassSocketSend, "sendmmsg": ClassSocketSend,
	"connect": ClassConnect,
	"accept":  ClassAccept, "accept4": ClassAccept,

	"read": ClassFileIO, "write": ClassFileIO,
	"pread64": ClassFileIO, "pwrite64": ClassFileIO,
	"readv": ClassFileIO, "writev": ClassFileIO,
	"preadv": ClassFileIO, "pwritev": ClassFileIO,
	"preadv2": ClassFileIO, "pwritev2": ClassFileIO,

	"fsync": ClassSync, "fdatasync": ClassSync, "sync": ClassSync, "syncfs": ClassSync,
	"sync_file_range": ClassSync, "msync": ClassSync,

	"nanosleep": ClassSleep, "clock_nanosleep": ClassSleep,

	"futex": ClassFutex, "futex_waitv": ClassFutex, "futex_wait": ClassFutex,

	"wait4": ClassProcWait, "waitid": ClassProcWait,

	"pause": ClassLoopOther, "sigsuspend": ClassLoopOther, "rt_sigsuspend": ClassLoopOther,
	"rt_sigtimedwait": ClassLoopOther, "flock": ClassLoopOther,
	"msgrcv": ClassLoopOther, "semop": ClassLoopOther, "semtimedop": ClassLoopOther,

	"getsockopt": ClassNoWait, "setsockopt": ClassNoWait, "getsockname": ClassNoWait, "getpeername": ClassNoWait,
	"socket": ClassNoWait, "socketpair": ClassNoWait, "bind": ClassNoWait, "listen": ClassNoWait, "shutdown": ClassNoWait,
	"epoll_ctl": ClassNoWait, "epoll_create": ClassNoWait, "epoll_create1": ClassNoWait,
	"eventfd": ClassNoWait, "eventfd2": ClassNoWait, "pipe": ClassNoWait, "pipe2": ClassNoWait,
	"timerfd_create": ClassNoWait, "timerfd_settime": ClassNoWait, "timerfd_gettime": ClassNoWait,
	"dup": ClassNoWait, "dup2": ClassNoWait, "dup3": ClassNoWait, "lseek": ClassNoWait,
	"getpid": ClassNoWait, "getppid": ClassNoWait, "gettid": ClassNoWait, "getuid": ClassNoWait, "geteuid": ClassNoWait,
	"getgid": ClassNoWait, "getegid": ClassNoWait, "uname": ClassNoWait, "getrusage": ClassNoWait,
	"clock_gettime": ClassNoWait, "gettimeofday": ClassNoWait, "time": ClassNoWait,
	"rt_sigaction": ClassNoWait, "rt_sigprocmask": ClassNoWait, "sigaltstack": ClassNoWait,
	"sched_yield": ClassNoWait, "sched_getaffinity": ClassNoWait, "prctl": ClassNoWait, "arch_prctl": ClassNoWait,
	"set_robust_list": ClassNoWait, "rseq": ClassNoWait, "set_tid_address": ClassNoWait,

	"restart_syscall": ClassRestart,
}

// SysVIPC tells whether the named call waits on a System V semaphore or
// message queue, as a pool's workers may wait for work.
func SysVIPC(name string) bool {
	switch name {
	case "semop", "semtimedop", "msgrcv":
		return true
	}
	return false
}

// ClassOf returns the class of the named syscall, ClassOther if it has none.
func ClassOf(name string) Class { return classes[name] }

// fdArgs gives, for calls that act on one file descriptor, the index of that
// argument. The *at family is left out on purpose: its dirfd names where a
// path is looked up (usually AT_FDCWD), not the object the call waits on.
var fdArgs = map[string]int{
	// I/O
	"read": 0, "write": 0, "pread64": 0, "pwrite64": 0,
	"readv": 0, "writev": 0, "preadv": 0, "pwritev": 0, "preadv2": 0, "pwritev2": 0,
	"sendfile": 0, "splice": 0, "tee": 0, "vmsplice": 0, "copy_file_range": 0,
	"readahead": 0, "getdents64": 0, "getdents": 0,
	// sockets
	"recvfrom": 0, "recvmsg": 0, "recvmmsg": 0,
	"sendto": 0, "sendmsg": 0, "sendmmsg": 0,
	"connect": 0, "accept": 0, "accept4": 0, "bind": 0, "listen": 0, "shutdown": 0,
	"getsockname": 0, "getpeername": 0, "setsockopt": 0, "getsockopt": 0,
	// readiness on a single fd
	"epoll_wait": 0, "epoll_pwait": 0, "epoll_pwait2": 0, "epoll_ctl": 0,
	"io_uring_enter": 0, "io_uring_register": 0,
	// sync and locks
	"fsync": 0, "fdatasync": 0, "syncfs": 0, "sync_file_range": 0, "flock": 0,
	// fd management and metadata
	"close": 0, "dup": 0, "dup2": 0, "dup3": 0, "fcntl": 0, "ioctl": 0,
	"lseek": 0, "fstat": 0, "fstatfs": 0, "ftruncate": 0, "fallocate": 0, "fadvise64": 0,
	"fchmod": 0, "fchown": 0, "fchdir": 0, "fgetxattr": 0, "fsetxattr": 0,
	"flistxattr": 0, "fremovexattr": 0,
	"timerfd_settime": 0, "timerfd_gettime": 0, "signalfd": 0, "signalfd4": 0,
	"inotify_add_watch": 0, "inotify_rm_watch": 0, "fanotify_mark": 0,
	// mmap(addr, length, prot, flags, fd, offset)
	"mmap": 4,
}

// FDArg returns the index of the argument holding the file descriptor the
// named call acts on, or -1 if it has none (poll and select take arrays).
func FDArg(name string) int {
	if i, ok := fdArgs[name]; ok {
		return i
	}
	return -1
}
