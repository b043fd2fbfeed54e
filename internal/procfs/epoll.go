package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/snagtrace/snag/internal/model"
)

// EpollEntry is one fd an epoll instance watches, as its fdinfo shows it.
type EpollEntry struct {
	FD     int    // the watched fd number in the owner's table
	Events uint32 // EPOLLIN, EPOLLET, … as registered
	Data   uint64 // the user data registered with it
}

// maxEpollEntries bounds the interest list kept per epoll fd. A busy server
// can watch tens of thousands of connections; what the analyzer asks of
// a set (does it watch work at all, only a listener, a pipe) is answered
// by its first few thousand, and the file is read whole anyway.
const maxEpollEntries = 4096

// ParseEpollFDInfo parses /proc/PID/fdinfo/EPFD of an epoll fd:
//
//	pos:	0
//	flags:	02000002
//	mnt_id:	17
//	ino:	1038
//	tfd:        4 events:       19 data:                4  pos:0 ino:6e4e sdev:9
//
// events and data are hex (fs/eventpoll.c ep_show_fdinfo). Lines other
// than tfd lines are skipped; at most maxEpollEntries entries are kept.
func ParseEpollFDInfo(b []byte) ([]EpollEntry, error) {
	var out []EpollEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for n := 1; sc.Scan(); n++ {
		rest, ok := strings.CutPrefix(sc.Text(), "tfd:")
		if !ok {
			continue
		}
		e, err := parseTFD(rest)
		if err != nil {
			return out, fmt.Errorf("line %d: %w", n, err)
		}
		if len(out) < maxEpollEntries {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// parseTFD parses what follows "tfd:": "4 events: 19 data: 4 pos:0 …".
func parseTFD(s string) (EpollEntry, error) {
	var e EpollEntry
	f := strings.Fields(s)
	if len(f) < 5 || f[1] != "events:" || f[3] != "data:" {
		return e, fmt.Errorf("want \"tfd: N events: X data: Y\", got %q", truncate(s))
	}
	fd, err := strconv.ParseUint(f[0], 10, 31)
	if err != nil {
		return e, fmt.Errorf("bad tfd %q", f[0])
	}
	ev, err := strconv.ParseUint(f[2], 16, 32)
	if err != nil {
		return e, fmt.Errorf("bad events %q", f[2])
	}
	data, err := strconv.ParseUint(f[4], 16, 64)
	if err != nil {
		return e, fmt.Errorf("bad data %q", f[4])
	}
	e.FD, e.Events, e.Data = int(fd), uint32(ev), data
	return e, nil
}

// EpollEntries reads the interest list of epoll fd epfd of process pid.
func (fs FS) EpollEntries(pid, epfd int) ([]EpollEntry, error) {
	path := fs.path(pid, "fdinfo", strconv.Itoa(epfd))
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read epoll fd %d of pid %d: %w", epfd, pid, err)
	}
	es, err := ParseEpollFDInfo(b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return es, nil
}

// FD is one open file descriptor and what /proc/PID/fd names it.
type FD struct {
	FD     int
	Target string // "/var/log/app.log", "socket:[123]", "pipe:[5]", "anon_inode:[eventpoll]"
}

// FDs lists the file descriptors of process pid, ordered by number. An fd
// closed between the listing and its readlink is left out.
func (fs FS) FDs(pid int) ([]FD, error) {
	entries, err := os.ReadDir(fs.path(pid, "fd"))
	if err != nil {
		return nil, fmt.Errorf("list fds of pid %d: %w", pid, err)
	}
	out := make([]FD, 0, len(entries))
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := fs.FDTarget(pid, fd)
		if errors.Is(err, os.ErrNotExist) && fs.Exists(pid) {
			continue // closed since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, FD{FD: fd, Target: target})
	}
	slices.SortFunc(out, func(a, b FD) int { return a.FD - b.FD })
	return out, nil
}

// KindOf classifies an fd by what /proc/PID/fd names it.
func KindOf(target string) model.FDKind {
	switch {
	case target == "":
		return model.FDUnknown
	case strings.HasPrefix(target, "socket:["):
		return model.FDSocket
	case strings.HasPrefix(target, "pipe:["):
		return model.FDPipe
	case strings.HasPrefix(target, "/"):
		return model.FDFile
	}
	return model.FDOther // anon_inode:[eventfd], [eventpoll], [timerfd], …
}

// MaxOpenFiles bounds the non-socket fds OpenFiles keeps per process. A
// process holding more files than this is rare, and its first thousands
// (the lowest numbers, opened first: logs, databases, the loop's pipes and
// eventfds) say what it works on; the sockets are in Sockets in any case.
const MaxOpenFiles = 4096

// OpenFiles picks the non-socket fds of pid out of fds, at most
// MaxOpenFiles of them.
func OpenFiles(pid int, fds []FD) []model.OpenFile {
	var out []model.OpenFile
	for _, f := range fds {
		if len(out) == MaxOpenFiles {
			break
		}
		if KindOf(f.Target) == model.FDSocket {
			continue
		}
		out = append(out, model.OpenFile{PID: pid, FD: f.FD, Path: f.Target})
	}
	return out
}

// isEpoll reports whether an fd target is an epoll instance.
func isEpoll(target string) bool { return target == "anon_inode:[eventpoll]" }

// EpollSets reads the interest list of every epoll fd among fds (pid's
// table, from FDs) and says what each watched fd is: its kind and path
// from fds, and for sockets whether it listens and its peer from socks
// (pid's Sockets). A watched fd closed since it was added (the epoll
// instance keeps the file while another fd refers to it) has no path and
// an unknown kind.
func (fs FS) EpollSets(pid int, fds []FD, socks []model.Socket, end bool) ([]model.EpollSet, error) {
	byFD := make(map[int]string, len(fds))
	for _, f := range fds {
		byFD[f.FD] = f.Target
	}
	sockByFD := make(map[int]*model.Socket, len(socks))
	for i := range socks {
		if socks[i].PID == pid {
			sockByFD[socks[i].FD] = &socks[i]
		}
	}
	var sets []model.EpollSet
	var errs []error
	for _, f := range fds {
		if !isEpoll(f.Target) {
			continue
		}
		entries, err := fs.EpollEntries(pid, f.FD)
		if errors.Is(err, os.ErrNotExist) && fs.Exists(pid) {
			continue // closed since the listing
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		set := model.EpollSet{PID: pid, EPFD: f.FD, End: end, FDs: make([]model.EpollFD, 0, len(entries))}
		for _, e := range entries {
			w := model.EpollFD{FD: e.FD}
			if target, ok := byFD[e.FD]; ok {
				w.Kind = KindOf(target)
				if w.Kind != model.FDSocket {
					w.Path = target
				}
			}
			if s := sockByFD[e.FD]; s != nil && w.Kind == model.FDSocket {
				w.Listening = s.State == "LISTEN"
				w.Peer, w.Local = s.Peer, s.Local
			}
			set.FDs = append(set.FDs, w)
		}
		sets = append(sets, set)
	}
	return sets, errors.Join(errs...)
}
