package analyzer

import (
	"cmp"
	"slices"
	"strings"

	"github.com/snagtrace/snag/internal/model"
)

// fileIndex names the file behind an fd at a moment of the trace: the path
// an open during the trace returned it for, else what /proc named it at
// attach.
type fileIndex struct {
	opens   map[[2]int][]fileOpen // (pid, fd) -> opens in time order
	initial map[[2]int]string
}

type fileOpen struct {
	at   uint64
	path string
}

func (s *session) indexFiles() {
	s.files = fileIndex{opens: map[[2]int][]fileOpen{}, initial: map[[2]int]string{}}
	for _, f := range s.t.Files {
		s.files.initial[[2]int{f.PID, f.FD}] = f.Path
	}
	for i := range s.t.Events {
		ev := &s.t.Events[i]
		if ev.Kind == model.EvOpen && ev.Ret >= 0 && ev.Filename != "" {
			k := [2]int{ev.PID, int(ev.Ret)}
			s.files.opens[k] = append(s.files.opens[k], fileOpen{ev.Time, ev.Filename})
		}
	}
	for _, os := range s.files.opens {
		slices.SortFunc(os, func(x, y fileOpen) int { return cmp.Compare(x.at, y.at) })
	}
}

// path is the file fd named in pid at time at, "" when unknown or not a
// file (pipes, sockets and anon inodes are named elsewhere).
func (idx fileIndex) path(pid, fd int, at uint64) string {
	if fd < 0 {
		return ""
	}
	k := [2]int{pid, fd}
	p := idx.initial[k]
	for _, o := range idx.opens[k] {
		if o.at > at {
			break
		}
		p = o.path
	}
	if !strings.HasPrefix(p, "/") {
		return ""
	}
	return p
}
