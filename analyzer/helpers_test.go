package analyzer

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

const ms = time.Millisecond

// builder assembles a trace the way any source fills the model.
type builder struct {
	t   *model.Trace
	now uint64
}

func newTrace(d time.Duration) *builder {
	return &builder{t: &model.Trace{Source: "test", Duration: d, Threshold: 10 * ms, StartNS: 1_000_000}, now: 1_000_000}
}

func (b *builder) thread(pid, tid int, name string, cpu time.Duration) *builder {
	b.t.Threads = append(b.t.Threads, model.Thread{PID: pid, TID: tid, Name: name, OnCPU: cpu})
	return b
}

func (b *builder) process(pid int, cmdline ...string) *builder {
	p := model.Process{PID: pid, Cmdline: cmdline}
	if len(cmdline) > 0 {
		p.Comm = cmdline[0]
	}
	b.t.Processes = append(b.t.Processes, p)
	if b.t.Target.PID == 0 {
		b.t.Target = model.Target{PID: pid, Comm: p.Comm, Cmdline: cmdline}
	}
	return b
}

// runtime sets what runs process pid.
func (b *builder) runtime(pid int, r model.Runtime) *builder {
	for i := range b.t.Processes {
		if b.t.Processes[i].PID == pid {
			b.t.Processes[i].Runtime = r
			return b
		}
	}
	b.t.Processes = append(b.t.Processes, model.Process{PID: pid, Runtime: r})
	return b
}

var geventRuntime = model.Runtime{Name: model.RuntimeCPython, Version: "3.11.2", Loop: model.LoopGevent}

// calls records n calls of name, each taking d, in the aggregates.
func (b *builder) calls(pid, tid int, name string, n int, d time.Duration) *builder {
	for i := range b.t.Syscalls {
		st := &b.t.Syscalls[i]
		if st.TID == tid && st.Name == name {
			b.addTo(st, n, d)
			return b
		}
	}
	b.t.Syscalls = append(b.t.Syscalls, model.SyscallStat{PID: pid, TID: tid, Name: name, Nr: -1})
	b.addTo(&b.t.Syscalls[len(b.t.Syscalls)-1], n, d)
	return b
}

func (b *builder) addTo(st *model.SyscallStat, n int, d time.Duration) {
	for range n {
		st.Count++
		st.Total += d
		st.Max = max(st.Max, d)
		st.Hist.Add(uint64(d))
	}
}

// event appends ev at the next instant, and counts it in the aggregates
// when it is a syscall.
func (b *builder) event(ev model.Event) *builder {
	b.now += uint64(ev.Duration) + uint64(ms)
	if ev.Time == 0 {
		ev.Time = b.now
	}
	if ev.Kind == 0 {
		ev.Kind = model.EvSyscall
	}
	if ev.FD == 0 && ev.Kind != model.EvSyscall {
		ev.FD = -1
	}
	b.t.Events = append(b.t.Events, ev)
	return b
}

// slow adds n syscall events and their aggregates.
func (b *builder) slow(n int, ev model.Event) *builder {
	for range n {
		b.event(ev)
		b.calls(ev.PID, ev.TID, ev.Syscall, 1, ev.Duration)
	}
	return b
}

func inet(s string) model.Addr {
	ap := netip.MustParseAddrPort(s)
	fam := model.FamilyInet
	if ap.Addr().Is6() {
		fam = model.FamilyInet6
	}
	return model.Addr{Family: fam, IP: ap.Addr(), Port: ap.Port()}
}

func frames(spec ...string) []model.Frame {
	var fs []model.Frame
	for _, s := range spec {
		fn, mod, _ := strings.Cut(s, "@")
		fs = append(fs, model.Frame{Function: fn, Module: mod, Kind: model.FrameNative})
	}
	return fs
}

func findingsOf(a *model.Analysis, kind string) []model.Finding {
	var out []model.Finding
	for _, f := range a.Findings {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

func threadOf(t *testing.T, a *model.Analysis, tid int) model.ThreadSummary {
	t.Helper()
	for _, th := range a.Threads {
		if th.TID == tid {
			return th
		}
	}
	t.Fatalf("thread %d not in analysis", tid)
	return model.ThreadSummary{}
}

func connOf(a *model.Analysis, peer string) (model.Connection, bool) {
	for _, c := range a.Connections {
		if c.Peer.String() == peer {
			return c, true
		}
	}
	return model.Connection{}, false
}

func budgetOf(th model.ThreadSummary, cat string) time.Duration {
	for _, it := range th.Budget {
		if it.Category == cat {
			return it.Time
		}
	}
	return 0
}
