package stracelog

import (
	"net/netip"
	"reflect"
	"strconv"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

const libpython = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"
const hubLocal = "/srv/venv/lib/python3.11/site-packages/gevent/_gevent_c_hub_local.cpython-311-x86_64-linux-gnu.so"

// A gevent server under strace -f -tt -T -yy: it loads libpython and a
// gevent module, listens, watches its listener, a pipe and a connection,
// and closes the connection.
const geventYY = `100 10:00:00.000000 execve("/usr/bin/python3", ["python3", "app.py"], 0x7ffd5e0 /* 20 vars */) = 0 <0.000200>
100 10:00:00.001000 openat(AT_FDCWD, "` + libpython + `", O_RDONLY|O_CLOEXEC) = 3<` + libpython + `> <0.000010>
100 10:00:00.001100 close(3<` + libpython + `>) = 0 <0.000005>
100 10:00:00.002000 openat(AT_FDCWD, "` + hubLocal + `", O_RDONLY|O_CLOEXEC) = 3<` + hubLocal + `> <0.000010>
100 10:00:00.002100 close(3<` + hubLocal + `>) = 0 <0.000005>
100 10:00:00.003000 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, IPPROTO_IP) = 4<TCP:[1234]> <0.000010>
100 10:00:00.003100 bind(4<TCP:[1234]>, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0 <0.000010>
100 10:00:00.003200 listen(4<TCP:[127.0.0.1:8000]>, 128) = 0 <0.000010>
100 10:00:00.003300 epoll_create1(EPOLL_CLOEXEC) = 5<anon_inode:[eventpoll]> <0.000010>
100 10:00:00.003400 epoll_ctl(5<anon_inode:[eventpoll]>, EPOLL_CTL_ADD, 4<TCP:[127.0.0.1:8000]>, {events=EPOLLIN, data={u32=4, u64=4}}) = 0 <0.000005>
100 10:00:00.003500 pipe2([6<pipe:[777]>, 7<pipe:[777]>], O_NONBLOCK|O_CLOEXEC) = 0 <0.000005>
100 10:00:00.003600 epoll_ctl(5<anon_inode:[eventpoll]>, EPOLL_CTL_ADD, 6<pipe:[777]>, {events=EPOLLIN, data={u32=6, u64=6}}) = 0 <0.000005>
100 10:00:00.004000 accept4(4<TCP:[127.0.0.1:8000]>, {sa_family=AF_INET, sin_port=htons(51000), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC|SOCK_NONBLOCK) = 8<TCP:[127.0.0.1:8000->127.0.0.1:51000]> <0.000010>
100 10:00:00.004100 epoll_ctl(5<anon_inode:[eventpoll]>, EPOLL_CTL_ADD, 8<TCP:[127.0.0.1:8000->127.0.0.1:51000]>, {events=EPOLLIN, data={u32=8, u64=8}}) = 0 <0.000005>
100 10:00:00.004200 epoll_ctl(5<anon_inode:[eventpoll]>, EPOLL_CTL_MOD, 8<TCP:[127.0.0.1:8000->127.0.0.1:51000]>, {events=EPOLLIN|EPOLLOUT, data={u32=8, u64=8}}) = 0 <0.000005>
100 10:00:00.004300 openat(AT_FDCWD, "app.log", O_WRONLY|O_CREAT|O_APPEND, 0644) = 9</srv/app/app.log> <0.000020>
100 10:00:00.004400 epoll_ctl(5<anon_inode:[eventpoll]>, EPOLL_CTL_ADD, 9</srv/app/app.log>, {events=EPOLLIN, data={u32=9, u64=9}}) = -1 EPERM (Operation not permitted) <0.000005>
100 10:00:00.004500 epoll_wait(5<anon_inode:[eventpoll]>, [{events=EPOLLIN, data={u32=8, u64=8}}], 64, -1) = 1 <0.050000>
100 10:00:00.054600 close(8<TCP:[127.0.0.1:8000->127.0.0.1:51000]>) = 0 <0.000010>
100 10:00:00.054700 openat(AT_FDCWD, "/nonexistent", O_RDONLY) = -1 ENOENT (No such file or directory) <0.000010>
100 10:00:00.054800 close(-1) = -1 EBADF (Bad file descriptor) <0.000005>
`

func TestStraceFactsWithYY(t *testing.T) {
	tr, st := parseString(t, geventYY, Options{Threshold: 10 * ms})
	if st.Unparsed != 0 {
		t.Fatalf("unparsed lines %v", st.FirstBad)
	}
	want := model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopGevent}
	if got := tr.Processes[0].Runtime; got != want {
		t.Errorf("runtime %+v, want %+v", got, want)
	}
	wantSets := []model.EpollSet{{PID: 100, EPFD: 5, End: true, FDs: []model.EpollFD{
		{FD: 4, Kind: model.FDSocket, Listening: true},
		{FD: 6, Kind: model.FDPipe, Path: "pipe:[777]"},
	}}}
	if !reflect.DeepEqual(tr.Epoll, wantSets) {
		t.Errorf("epoll %+v, want %+v", tr.Epoll, wantSets)
	}

	var opens, closes []string
	for _, e := range tr.Events {
		switch e.Kind {
		case model.EvOpen:
			opens = append(opens, e.Filename+"="+strconv.Itoa(int(e.Ret)))
		case model.EvClose:
			closes = append(closes, strconv.Itoa(e.FD)+":"+e.FDKind.String()+":"+e.Peer.String())
		}
	}
	wantOpens := []string{libpython + "=3", hubLocal + "=3", "/srv/app/app.log=9"}
	if !reflect.DeepEqual(opens, wantOpens) {
		t.Errorf("opens %q, want %q", opens, wantOpens)
	}
	wantCloses := []string{"3:file:", "3:file:", "8:socket:127.0.0.1:51000"}
	if !reflect.DeepEqual(closes, wantCloses) {
		t.Errorf("closes %q, want %q", closes, wantCloses)
	}
	if e := findEvent(tr, model.EvSyscall, "epoll_wait"); e == nil || e.FD != 5 {
		t.Errorf("the slow epoll_wait is still an event: %+v", e)
	}
}

// Without -y the fd table built from the log names what an epoll fd
// watches; a closed fd leaves its lists; an exec starts a new runtime and
// new lists; a fork keeps its parent's runtime.
func TestStraceFactsWithoutYY(t *testing.T) {
	log := `1 10:00:00.000000 execve("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", ["java", "-jar", "srv.jar"], 0x7ffd /* 9 vars */) = 0 <0.000100>
1 10:00:00.000100 openat(AT_FDCWD, "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so", O_RDONLY|O_CLOEXEC) = 3 <0.000010>
1 10:00:00.000200 close(3) = 0 <0.000005>
1 10:00:00.001000 socket(AF_INET6, SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP) = 4 <0.000010>
1 10:00:00.001100 listen(4, 50) = 0 <0.000005>
1 10:00:00.001200 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 6 <0.000010>
1 10:00:00.001300 connect(6, {sa_family=AF_INET, sin_port=htons(3306), sin_addr=inet_addr("10.0.0.5")}, 16) = 0 <0.000100>
1 10:00:00.001400 epoll_create1(EPOLL_CLOEXEC) = 5 <0.000005>
1 10:00:00.001500 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN, data={u32=4, u64=4}}) = 0 <0.000005>
1 10:00:00.001600 epoll_ctl(5, EPOLL_CTL_ADD, 6, {events=EPOLLIN, data={u32=6, u64=6}}) = 0 <0.000005>
1 10:00:00.001700 epoll_ctl(5, EPOLL_CTL_ADD, 10, {events=EPOLLIN, data={u32=10, u64=10}}) = 0 <0.000005>
1 10:00:00.001800 close(10) = 0 <0.000005>
1 10:00:00.001900 epoll_ctl(5, EPOLL_CTL_DEL, 4, NULL) = 0 <0.000005>
1 10:00:00.002000 epoll_create1(0) = 11 <0.000005>
1 10:00:00.002100 epoll_ctl(11, EPOLL_CTL_ADD, 6, {events=EPOLLOUT, data={u32=6, u64=6}}) = 0 <0.000005>
1 10:00:00.002200 close(11) = 0 <0.000005>
1 10:00:00.003000 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 2 <0.000100>
2 10:00:00.003100 execve("/usr/bin/node", ["node", "x.js"], 0x7ffd /* 9 vars */) = 0 <0.000100>
1 10:00:00.004000 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 3 <0.000100>
3 10:00:00.004100 getpid() = 3 <0.000005>
`
	tr, st := parseString(t, log, Options{Threshold: 10 * ms})
	if st.Unparsed != 0 {
		t.Fatalf("unparsed lines %v", st.FirstBad)
	}
	rts := map[int]model.Runtime{}
	for _, p := range tr.Processes {
		rts[p.PID] = p.Runtime
	}
	jvm := model.Runtime{Name: model.RuntimeJVM, Version: "17"}
	want := map[int]model.Runtime{1: jvm, 2: {Name: model.RuntimeNode, Loop: model.LoopLibuv}, 3: jvm}
	if !reflect.DeepEqual(rts, want) {
		t.Errorf("runtimes %+v, want %+v", rts, want)
	}
	mysql := model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.5"), Port: 3306}
	wantSets := []model.EpollSet{{PID: 1, EPFD: 5, End: true, FDs: []model.EpollFD{{FD: 6, Kind: model.FDSocket, Peer: mysql}}}}
	if !reflect.DeepEqual(tr.Epoll, wantSets) {
		t.Errorf("epoll %+v, want %+v", tr.Epoll, wantSets)
	}
}

// A log shows no runtime for a plain executable: Go and C look alike.
func TestStraceNativeIsUnknown(t *testing.T) {
	log := `1 10:00:00.000000 execve("/usr/bin/python3.11", ["python3.11"], 0x7ffd /* 9 vars */) = 0 <0.000100>
1 10:00:00.001000 execve("/usr/local/bin/server", ["server"], 0x7ffd /* 9 vars */) = 0 <0.000100>
1 10:00:00.002000 openat(AT_FDCWD, "/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY|O_CLOEXEC) = 3 <0.000010>
`
	tr, _ := parseString(t, log, Options{Threshold: 10 * ms})
	if rt := tr.Processes[0].Runtime; !rt.IsZero() {
		t.Errorf("runtime %+v, want unknown", rt)
	}
}
