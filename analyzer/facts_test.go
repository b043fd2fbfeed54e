package analyzer

import (
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

func TestLocalPeerNamedByItsProcess(t *testing.T) {
	b := newTrace(5*time.Second).process(1, "app").thread(1, 1, "app", 0)
	b.t.Listeners = []model.Listener{{Addr: inet("0.0.0.0:23081"), PID: 4242, Comm: "mariadbd"}}
	b.event(model.Event{Kind: model.EvConnect, PID: 1, TID: 1, Syscall: "connect", FD: 5, Peer: inet("127.0.0.1:23081")})
	b.calls(1, 1, "connect", 1, 100*time.Microsecond)
	a := Analyze(b.t, Config{Expect: []Endpoint{}})
	fs := findingsOf(a, model.KindUnexpectedConnection)
	if len(fs) != 1 || !strings.Contains(fs[0].Title, "127.0.0.1:23081 (mariadbd pid 4242)") {
		t.Errorf("findings = %+v, want the peer named by the process listening there", fs)
	}
}

func TestConnectionOpenBeforeAttachBelongsToItsHolder(t *testing.T) {
	b := newTrace(5*time.Second).process(7, "celery", "worker").thread(7, 7, "celery", 0)
	b.calls(7, 7, "read", 10, time.Millisecond)
	b.t.Sockets = []model.Socket{{PID: 7, FD: 9, Proto: "tcp", State: "ESTABLISHED", Local: inet("127.0.0.1:50000"), Peer: inet("127.0.0.1:3306")}}
	a := Analyze(b.t, Config{Expect: []Endpoint{}})
	fs := findingsOf(a, model.KindUnexpectedConnection)
	if len(fs) != 1 || fs[0].PID != 7 || fs[0].Thread != "celery" || !strings.Contains(fs[0].Detail, "held by pid 7") {
		t.Errorf("findings = %+v, want the holder named", fs)
	}
}

func TestChurnCarriesTheLibraryAndIsNotBeforeAttach(t *testing.T) {
	libpq := frames("__libc_connect@libc.so.6", "PQconnectPoll@libpq.so.5", "main@client")
	b := newTrace(5*time.Second).process(1, "client").thread(1, 1, "client", 0)
	// The socket list, read just after the attach, already holds the
	// first connection the trace saw being made.
	b.t.Sockets = []model.Socket{{PID: 1, FD: 3, Proto: "tcp", State: "ESTABLISHED", Peer: inet("127.0.0.1:5432")}}
	for i := range 60 {
		st := libpq
		if i == 0 {
			st = frames("__libc_connect@libc.so.6") // a stack cut short
		}
		b.event(model.Event{Kind: model.EvConnect, PID: 1, TID: 1, Syscall: "connect", FD: 3, Ret: -115, Peer: inet("127.0.0.1:5432"), Stack: st})
		b.calls(1, 1, "connect", 1, 50*time.Microsecond)
		b.event(model.Event{Kind: model.EvClose, PID: 1, TID: 1, Syscall: "close", FD: 3})
	}
	a := Analyze(b.t, Config{})
	fs := findingsOf(a, model.KindConnectionChurn)
	if len(fs) != 1 || fs[0].Library != "libpq.so.5" || len(fs[0].Stack) != 3 {
		t.Fatalf("churn = %+v, want libpq named with one stack", fs)
	}
	if !strings.Contains(fs[0].Detail, "60 closes seen") {
		t.Errorf("detail = %q, want every close seen", fs[0].Detail)
	}
	if c, _ := connOf(a, "127.0.0.1:5432"); c.BeforeAttach {
		t.Errorf("connection = %+v, want not established before attach", c)
	}
}
