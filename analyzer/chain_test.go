package analyzer

import (
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

var uwsgiSock = model.Addr{Family: model.FamilyUnix, Path: "/run/app/uwsgi.sock"}

// incident502 is nginx (pid 1, an idle event loop) in front of two
// saturated uWSGI workers (pids 21, 22 under master 20) behind a unix
// socket whose queue of 8 is full.
func incident502(full int, refused int) *builder {
	b := newTrace(5*time.Second).process(1, "nginx").thread(1, 1, "nginx", 50*ms)
	b.calls(1, 1, "epoll_wait", 200, 20*ms)
	b.t.Processes = append(b.t.Processes, model.Process{PID: 20, Comm: "uwsgi"},
		model.Process{PID: 21, PPID: 20, Comm: "uwsgi"}, model.Process{PID: 22, PPID: 20, Comm: "uwsgi"})
	b.t.ListenQueues = []model.ListenQueue{{PID: 20, Addr: uwsgiSock, Limit: 8, Samples: 25, Full: full, Max: 8, Sum: uint64(full * 8)}}
	for _, pid := range []int{21, 22} {
		b.thread(pid, pid, "uwsgi", 100*ms)
		b.calls(pid, pid, "epoll_wait", 90, 100*time.Microsecond)
		b.t.Epoll = append(b.t.Epoll, model.EpollSet{PID: pid, EPFD: 7, FDs: []model.EpollFD{
			{FD: 3, Kind: model.FDSocket, Listening: true, Local: uwsgiSock}}})
		b.slow(90, model.Event{PID: pid, TID: pid, Syscall: "recvfrom", FD: 9, FDKnown: true, FDKind: model.FDSocket,
			Peer: inet("127.0.0.1:3306"), Duration: 52 * ms})
	}
	for i := range 200 {
		ev := model.Event{Kind: model.EvConnect, PID: 1, TID: 1, Syscall: "connect", FD: 12, Peer: uwsgiSock}
		if i < refused {
			ev.Ret = -eagain
		}
		b.event(ev)
		b.calls(1, 1, "connect", 1, 20*time.Microsecond)
	}
	return b
}

func TestThe502Chain(t *testing.T) {
	a := Analyze(incident502(20, 40).t, Config{})
	var kinds []string
	for _, f := range a.Findings {
		if f.Severity >= model.SeverityMedium {
			kinds = append(kinds, f.Kind)
		}
	}
	want := []string{model.KindAcceptQueueOverflow, model.KindUpstreamRefused, model.KindWorkerSaturation}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("findings = %v, want %v in that order: %+v", kinds, want, a.Findings)
	}
	of, rf, sat := a.Findings[0], a.Findings[1], a.Findings[2]
	if of.Severity != model.SeverityHigh || of.Peer != "unix:/run/app/uwsgi.sock" || !strings.Contains(of.Title, "limit 8") ||
		!strings.Contains(of.Detail, "all 2 workers were busy") {
		t.Errorf("overflow = %+v", of)
	}
	if rf.Count != 40 || rf.Severity != model.SeverityHigh || !strings.Contains(rf.Detail, "502 Bad Gateway") ||
		!strings.Contains(rf.Detail, "accept-queue-overflow") || !strings.Contains(rf.Hint, "EAGAIN") {
		t.Errorf("refused = %+v", rf)
	}
	if sat.Count != 2 || sat.PID == 1 {
		t.Errorf("saturation = %+v, want the uWSGI pool, not nginx", sat)
	}
	// nginx's connect per request over a unix socket costs microseconds:
	// no churn finding above low.
	for _, f := range findingsOf(a, model.KindConnectionChurn) {
		if f.Severity > model.SeverityLow {
			t.Errorf("churn = %+v, want at most low", f)
		}
	}
}

func TestChainTraps(t *testing.T) {
	t.Run("a queue briefly non-empty is no overflow", func(t *testing.T) {
		b := incident502(1, 0)
		b.t.ListenQueues[0].Sum = 30
		if fs := findingsOf(Analyze(b.t, Config{}), model.KindAcceptQueueOverflow); len(fs) != 0 {
			t.Errorf("overflow = %+v", fs)
		}
	})
	t.Run("EINPROGRESS is no refusal", func(t *testing.T) {
		b := newTrace(2*time.Second).process(1, "client").thread(1, 1, "client", 0)
		for range 20 {
			b.event(model.Event{Kind: model.EvConnect, PID: 1, TID: 1, Syscall: "connect", FD: 5, Ret: -einprogress, Peer: inet("10.0.0.5:80")})
		}
		if fs := findingsOf(Analyze(b.t, Config{}), model.KindUpstreamRefused); len(fs) != 0 {
			t.Errorf("refused = %+v", fs)
		}
	})
	t.Run("a worker exiting after max-requests is not killed", func(t *testing.T) {
		b := newTrace(2*time.Second).process(20, "uwsgi")
		b.t.Processes = append(b.t.Processes, model.Process{PID: 21, PPID: 20, Comm: "uwsgi"})
		b.event(model.Event{Kind: model.EvExit, PID: 21, TID: 21, ExitCode: 0})
		b.event(model.Event{Kind: model.EvFork, PID: 20, TID: 20, ChildPID: 23})
		if fs := Analyze(b.t, Config{}).Findings; len(fs) != 0 {
			t.Errorf("findings = %+v", fs)
		}
	})
}

func TestWorkerKilled(t *testing.T) {
	b := newTrace(5*time.Second).process(20, "uwsgi")
	b.t.Processes = append(b.t.Processes, model.Process{PID: 21, PPID: 20, Comm: "uwsgi"},
		model.Process{PID: 22, PPID: 20, Comm: "uwsgi"}, model.Process{PID: 1, Comm: "nginx"})
	b.event(model.Event{Kind: model.EvSignal, PID: 21, TID: 21, Signal: 9, Sender: 20, SenderComm: "uwsgi"})
	b.event(model.Event{Kind: model.EvExit, PID: 21, TID: 21, ExitCode: 137, Signal: 9})
	// In the gap the surviving worker takes one connection; nginx's own
	// accepts of its clients are not the pool's.
	b.event(model.Event{Kind: model.EvAccept, PID: 22, TID: 22, Syscall: "accept4", Ret: 7})
	b.event(model.Event{Kind: model.EvAccept, PID: 1, TID: 1, Syscall: "accept4", Ret: 9})
	b.now += uint64(300 * ms)
	b.event(model.Event{Kind: model.EvFork, PID: 20, TID: 20, ChildPID: 24})
	fs := findingsOf(Analyze(b.t, Config{}), model.KindWorkerKilled)
	if len(fs) != 1 {
		t.Fatalf("killed = %+v", fs)
	}
	f := fs[0]
	if !strings.Contains(f.Title, "SIGKILL") || !strings.Contains(f.Detail, "from uwsgi (pid 20)") || !strings.Contains(f.Detail, "1 respawned") ||
		!strings.Contains(f.Detail, "1 connection was accepted by the others") || f.Total < 300*ms || f.Total > 305*ms {
		t.Errorf("killed = %+v", f)
	}
}
