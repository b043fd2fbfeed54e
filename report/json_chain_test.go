package report

import (
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func TestJSONListenQueuesAndSignals(t *testing.T) {
	tr := &model.Trace{
		StartNS:   1000,
		Processes: []model.Process{{PID: 10, Comm: "uwsgi"}, {PID: 11, Comm: "uwsgi", Exited: true, ExitCode: 137, Signal: 9}},
		ListenQueues: []model.ListenQueue{
			{PID: 10, Addr: model.Addr{Family: model.FamilyUnix, Path: "/run/app/uwsgi.sock"}, Inode: 77, Limit: 8, Samples: 4, Full: 3, Max: 9, Sum: 30},
		},
		TCPListen: model.ListenCounters{Known: true, Overflows: 5, Drops: 6},
		Events: []model.Event{
			{Kind: model.EvSignal, Time: 3000, PID: 11, TID: 11, Nr: -1, Signal: 9, Sender: 10, SenderComm: "uwsgi"},
			{Kind: model.EvSignal, Time: 4000, PID: 12, TID: 12, Nr: -1, Signal: 9, SenderComm: "oom-killer"},
		},
	}
	doc := decodeJSON(t, tr, nil)
	qs := doc["listen_queues"].([]any)
	if len(qs) != 1 {
		t.Fatalf("listen_queues %v", qs)
	}
	requireKeys(t, "listen_queues[0]", qs[0], map[string]string{
		"pid": "number", "addr": "string", "inode": "number", "limit": "number", "samples": "number",
		"full": "number", "max": "number", "mean_depth": "number",
	})
	if q := qs[0].(map[string]any); q["addr"] != "unix:/run/app/uwsgi.sock" || q["full"] != 3.0 || q["mean_depth"] != 7.5 {
		t.Errorf("queue %v", q)
	}
	if c := doc["tcp_listen"].(map[string]any); c["overflows"] != 5.0 || c["drops"] != 6.0 {
		t.Errorf("tcp_listen %v", c)
	}
	sigs := doc["signals"].([]any)
	if len(sigs) != 2 {
		t.Fatalf("signals %v", sigs)
	}
	requireKeys(t, "signals[0]", sigs[0], map[string]string{
		"time_ns": "number", "pid": "number", "tid": "number", "signal": "number", "name": "string",
		"sender": "number", "sender_comm": "string",
	})
	if s := sigs[0].(map[string]any); s["name"] != "SIGKILL" || s["sender"] != 10.0 || s["time_ns"] != 2000.0 {
		t.Errorf("signal %v", s)
	}
	if s := sigs[1].(map[string]any); s["sender"] != 0.0 || s["sender_comm"] != "oom-killer" {
		t.Errorf("signal %v", s)
	}
	procs := doc["processes"].([]any)
	if _, ok := procs[0].(map[string]any)["signal"]; ok {
		t.Error("a live process has a signal")
	}
	if procs[1].(map[string]any)["signal"] != 9.0 {
		t.Errorf("killed process %v", procs[1])
	}
}

// A trace without them leaves the fields out.
func TestJSONNoChainFields(t *testing.T) {
	doc := decodeJSON(t, &model.Trace{}, nil)
	for _, k := range []string{"listen_queues", "tcp_listen", "signals"} {
		if _, ok := doc[k]; ok {
			t.Errorf("%s present in a trace without it", k)
		}
	}
}

func TestSignalName(t *testing.T) {
	for sig, want := range map[int]string{9: "SIGKILL", 15: "SIGTERM", 11: "SIGSEGV", 0: "signal 0", 40: "signal 40", -1: "signal -1"} {
		if got := SignalName(sig); got != want {
			t.Errorf("SignalName(%d) = %q, want %q", sig, got, want)
		}
	}
}
