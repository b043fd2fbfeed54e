package recording

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

// chainTrace is richTrace with what the 502 chain needs: accept queues,
// listen counters, a worker killed by its master, and a fault.
func chainTrace() *model.Trace {
	t := richTrace()
	t.ListenQueues = []model.ListenQueue{
		{PID: 4242, Addr: model.Addr{Family: model.FamilyUnix, Path: "/run/app/uwsgi.sock"}, Inode: 77, Limit: 8, Samples: 25, Full: 20, Max: 9, Sum: 180},
		{PID: 4242, Addr: model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("127.0.0.1"), Port: 8000}, Inode: 1 << 40, Limit: 4096, Samples: 25},
	}
	t.TCPListen = model.ListenCounters{Known: true, Overflows: 12, Drops: 13}
	for i := range t.Events {
		if e := &t.Events[i]; e.Kind == model.EvExit && e.PID == 5000 {
			e.Signal = 9
			t.Events = append(t.Events[:i+1:i+1], append([]model.Event{{Kind: model.EvSignal, Time: e.Time - 10, PID: 5000, TID: 5000, Nr: -1, FD: -1, Signal: 9, Sender: 4242, SenderComm: "uwsgi"}}, t.Events[i+1:]...)...)
			break
		}
	}
	t.Events = append(t.Events, model.Event{Kind: model.EvSignal, Time: 5_000_009_000, PID: 5001, TID: 5001, Nr: -1, FD: -1, Signal: 11, SenderComm: "kernel"})
	for i := range t.Processes {
		if t.Processes[i].PID == 5000 {
			t.Processes[i].Signal = 9
		}
	}
	return t
}

func TestRoundTripListenQueuesAndSignals(t *testing.T) {
	want := chainTrace()
	got, st, err := Read(bytes.NewReader(encode(t, want)))
	if err != nil {
		t.Fatal(err)
	}
	if st.Truncated || st.Skipped != 0 {
		t.Errorf("stats %+v, want a clean read with nothing skipped", st)
	}
	want.Source = "recording"
	if !reflect.DeepEqual(got.ListenQueues, want.ListenQueues) || got.TCPListen != want.TCPListen {
		t.Errorf("queues %+v %+v, want %+v %+v", got.ListenQueues, got.TCPListen, want.ListenQueues, want.TCPListen)
	}
	if !reflect.DeepEqual(got.Processes, want.Processes) {
		t.Errorf("processes %+v, want %+v", got.Processes, want.Processes)
	}
	if !reflect.DeepEqual(got.Events, want.Events) {
		for i := range min(len(got.Events), len(want.Events)) {
			if !reflect.DeepEqual(got.Events[i], want.Events[i]) {
				t.Errorf("event %d:\n got %+v\nwant %+v", i, got.Events[i], want.Events[i])
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("the rest of the trace differs")
	}
}

// A killed recorder leaves no final record: the process signals still
// come from the exit events, and the queues are lost with the final.
func TestKilledRecorderKeepsSignals(t *testing.T) {
	tr := chainTrace()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, tr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tr.Events {
		w.Event(&tr.Events[i])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, st, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Rebuilt {
		t.Fatalf("stats %+v, want rebuilt", st)
	}
	var killed bool
	for _, p := range got.Processes {
		killed = killed || p.PID == 5000 && p.Signal == 9
	}
	if !killed {
		t.Errorf("processes %+v: pid 5000 not killed by signal 9", got.Processes)
	}
	if got.ListenQueues != nil {
		t.Errorf("queues %+v without a final record", got.ListenQueues)
	}
}

// A trace without accept queues writes no kind 7 record.
func TestNoListenRecordWithoutQueues(t *testing.T) {
	tr := richTrace()
	var w Writer
	if b := w.appendListen(nil, tr); b != nil {
		t.Errorf("listen payload %x for a trace without queues", b)
	}
}
