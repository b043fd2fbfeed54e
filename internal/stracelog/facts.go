package stracelog

import (
	"bytes"
	"cmp"
	"regexp"
	"slices"
	"strings"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/runtimes"
	"github.com/snagtrace/snag/internal/syscalls"
)

// This file derives the process facts a log shows: the runtime (from the
// file executed and the files opened: libpython3.11.so, gevent's modules,
// libjvm.so), and the epoll interest lists built by epoll_ctl.

// maxObjects bounds the runtime evidence kept per process: one path per
// package directory and the shared objects, of which a process opens a
// few dozen.
const maxObjects = 128

// maxEpollFDs bounds one interest list, as the live reading does.
const maxEpollFDs = 4096

// loopDirs are package directories whose files name a cooperative loop.
var loopDirs = []string{"/gevent/", "/greenlet/", "/eventlet/", "/uvloop/", "/asyncio/"}

// pythonLib matches a CPython standard library directory, which names the
// version.
var pythonLib = regexp.MustCompile(`/lib(?:64)?/python[23]\.\d+/`)

// objectKey says whether an opened path is runtime evidence, and under
// which key it is kept once: a package directory for its files, the path
// itself for a shared object.
func objectKey(path string) string {
	for _, d := range loopDirs {
		if strings.Contains(path, d) {
			return d
		}
	}
	if strings.Contains(path, ".so") {
		return path
	}
	if loc := pythonLib.FindStringIndex(path); loc != nil {
		return path[loc[0]:loc[1]]
	}
	return ""
}

// noteObject keeps an opened path as runtime evidence of pr.
func (pr *process) noteObject(path string) {
	key := objectKey(path)
	if key == "" || len(pr.objects) >= maxObjects {
		return
	}
	if pr.objectKeys == nil {
		pr.objectKeys = make(map[string]bool)
	}
	if pr.objectKeys[key] {
		return
	}
	pr.objectKeys[key] = true
	pr.objects = append(pr.objects, path)
}

// runtime is what the log shows of pr's runtime. A log does not say
// that an executable is native code (a Go binary opens no library that
// tells), so that claim is left to live traces.
func (pr *process) runtime() model.Runtime {
	rt := runtimes.Classify(runtimes.Input{Exe: pr.exe, Objects: pr.objects, Cmdline: pr.cmdline})
	if rt.Name == model.RuntimeNative {
		return model.Runtime{}
	}
	return rt
}

// epollSet is one epoll instance's interest list as epoll_ctl built it.
type epollSet struct {
	fds []model.EpollFD
}

// openedPath returns the path an open call opened: the -y annotation of
// its result (absolute) when there is one, else its path argument.
func (p *parser) openedPath(c *call) string {
	if _, annot, _ := parseFD(c.retText); len(annot) > 0 && annot[0] == '/' {
		return p.intern(annot)
	}
	arg := c.arg(p, 0)
	if c.decode&syscalls.ArgPathAt != 0 {
		arg = c.arg(p, 1)
	}
	s, _ := unquote(arg)
	return s
}

var epollCtlAdd, epollCtlDel = []byte("EPOLL_CTL_ADD"), []byte("EPOLL_CTL_DEL")

// epollCtl applies a successful epoll_ctl to its process's interest lists.
func (p *parser) epollCtl(c *call) {
	epfd, _, ok := parseFD(c.arg(p, 0))
	if !ok {
		return
	}
	fd, annot, ok := parseFD(c.arg(p, 2))
	if !ok {
		return
	}
	pr := p.proc(p.pidOf(c.th.tid))
	op := c.arg(p, 1)
	set := pr.epoll[epfd]
	if set != nil {
		set.fds = slices.DeleteFunc(set.fds, func(w model.EpollFD) bool { return w.FD == fd })
	}
	if !bytes.Equal(op, epollCtlAdd) {
		return // DEL removed it; MOD keeps what ADD saw
	}
	if set == nil {
		if pr.epoll == nil {
			pr.epoll = make(map[int]*epollSet)
		}
		set = &epollSet{}
		pr.epoll[epfd] = set
	}
	if len(set.fds) >= maxEpollFDs {
		return
	}
	w := model.EpollFD{FD: fd}
	a := decodeAnnot(annot)
	w.Kind, w.Peer = a.kind, a.peer
	if t := pr.fds[fd]; t != nil {
		if w.Kind == model.FDUnknown {
			w.Kind = t.kind
		}
		if w.Peer.IsZero() || w.Peer.Family == model.FamilyUnix && w.Peer.Path == "" && !t.peer.IsZero() {
			w.Peer = t.peer
		}
		w.Listening = t.listening
		if w.Kind != model.FDSocket {
			w.Path = t.path
		}
	}
	if w.Kind != model.FDSocket && len(annot) > 0 && !bytes.Contains(annot, []byte("<")) {
		w.Path = p.intern(annot) // "/var/log/app.log", "pipe:[5]", "anon_inode:[eventfd]"
	}
	set.fds = append(set.fds, w)
}

// closeFD forgets fd of the closing thread's process: its fd table entry,
// its place in every interest list (the kernel drops it with the last
// reference to the file), and the list it held if it was an epoll fd.
func (p *parser) closeFD(c *call) {
	fd, _, ok := parseFD(c.arg(p, 0))
	if !ok {
		return
	}
	pr := p.procs[p.pidOf(c.th.tid)]
	if pr == nil {
		return
	}
	delete(pr.fds, fd)
	delete(pr.epoll, fd)
	for _, set := range pr.epoll {
		set.fds = slices.DeleteFunc(set.fds, func(w model.EpollFD) bool { return w.FD == fd })
	}
}

// epollSets returns the interest lists of pid at the end of the log.
func (pr *process) epollSets(pid int) []model.EpollSet {
	var out []model.EpollSet
	for epfd, set := range pr.epoll {
		out = append(out, model.EpollSet{PID: pid, EPFD: epfd, End: true, FDs: slices.Clone(set.fds)})
	}
	slices.SortFunc(out, func(a, b model.EpollSet) int { return cmp.Compare(a.EPFD, b.EPFD) })
	return out
}
