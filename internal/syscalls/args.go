package syscalls

// Arg says what snag decodes of a call's arguments: which ones hold a poll
// set, an address, a path, the first bytes of a connection. The BPF loader
// turns it into the kernel side's per-syscall flags, the strace parser and
// the analyzer ask it instead of listing names of their own.
type Arg uint32

const (
	ArgPollFDs  Arg = 1 << iota // a pollfd array in arg 0, its count in arg 1, the timeout in arg 2: poll, ppoll
	ArgFDSets                   // nfds in arg 0, fd sets in args 1-3, the timeout in arg 4: select, _newselect, pselect6
	ArgEpoll                    // an epoll fd in arg 0, the timeout in arg 3: epoll_wait, epoll_pwait, epoll_pwait2
	ArgRing                     // an io_uring fd in arg 0, whose completions the call waits for: io_uring_enter
	ArgTimespec                 // the timeout is a struct timespec pointer, not milliseconds (ppoll, pselect6, epoll_pwait2)
	ArgConnect                  // a peer's sockaddr in arg 1: connect
	ArgAccept                   // the peer's sockaddr filled in arg 1, flags in arg 3 (accept4): accept, accept4
	ArgBind                     // our own sockaddr in arg 1: bind
	ArgSendTo                   // a destination sockaddr in arg 4: sendto
	ArgSendMsg                  // a destination in the msghdr's msg_name: sendmsg
	ArgData                     // data in arg 1, where a connection's first bytes are read: read, write, recvfrom, sendto
	ArgPath                     // a path in arg 0: open, creat
	ArgPathAt                   // a path in arg 1, looked up from the dirfd in arg 0: openat, openat2
	ArgClose                    // closes the fd in arg 0: close
	ArgFork                     // makes a process or thread: clone, clone3, fork, vfork
)

var args = map[string]Arg{
	"poll": ArgPollFDs, "ppoll": ArgPollFDs | ArgTimespec,
	"select": ArgFDSets, "_newselect": ArgFDSets, "pselect6": ArgFDSets | ArgTimespec,
	"epoll_wait": ArgEpoll, "epoll_pwait": ArgEpoll, "epoll_pwait2": ArgEpoll | ArgTimespec,
	"io_uring_enter": ArgRing,

	"connect": ArgConnect,
	"accept":  ArgAccept, "accept4": ArgAccept,
	"bind":    ArgBind,
	"sendto":  ArgSendTo | ArgData,
	"sendmsg": ArgSendMsg,
	"read":    ArgData, "write": ArgData, "recvfrom": ArgData,
	"open": ArgPath, "creat": ArgPath,
	"openat": ArgPathAt, "openat2": ArgPathAt,
	"close": ArgClose,
	"clone": ArgFork, "clone3": ArgFork, "fork": ArgFork, "vfork": ArgFork,
}

// ArgsOf returns what snag decodes of the named call's arguments.
func ArgsOf(name string) Arg { return args[name] }

// Is tells whether the named call's arguments have any of a.
func Is(name string, a Arg) bool { return args[name]&a != 0 }

// PollSet tells whether the named call waits on a set of fds it is handed
// (a pollfd array or fd sets) rather than on one fd.
func PollSet(name string) bool { return Is(name, ArgPollFDs|ArgFDSets) }

// Multiplexer tells whether the named call waits on one fd that itself
// watches many (an epoll instance, an io_uring).
func Multiplexer(name string) bool { return Is(name, ArgEpoll|ArgRing) }
