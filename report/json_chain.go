package report

import (
	"strconv"

	"github.com/snagtrace/snag/internal/model"
)

// The snag/v1 fields of the 502 chain: accept queues, listen counters and
// fatal signals. Each is omitted when the trace has none, so documents of
// traces without them read as before.

type jsonListenQueue struct {
	PID       int     `json:"pid"`
	Addr      string  `json:"addr"` // "127.0.0.1:8000", "unix:/run/app/uwsgi.sock"
	Inode     uint64  `json:"inode"`
	Limit     uint32  `json:"limit"`   // the backlog
	Samples   int     `json:"samples"` // readings, five a second
	Full      int     `json:"full"`    // readings at the limit
	Max       uint32  `json:"max"`     // deepest queue read
	MeanDepth float64 `json:"mean_depth"`
}

type jsonTCPListen struct {
	Overflows uint64 `json:"overflows"` // TcpExt ListenOverflows over the trace
	Drops     uint64 `json:"drops"`     // TcpExt ListenDrops over the trace
}

type jsonSignal struct {
	TimeNS     int64  `json:"time_ns"` // since the trace began
	PID        int    `json:"pid"`     // the target
	TID        int    `json:"tid"`
	Signal     int    `json:"signal"`
	Name       string `json:"name"`        // "SIGKILL"
	Sender     int    `json:"sender"`      // 0: the kernel
	SenderComm string `json:"sender_comm"` // "kernel" or "oom-killer" when Sender is 0
}

func (doc *jsonDoc) addChain(t *model.Trace) {
	for _, q := range t.ListenQueues {
		jq := jsonListenQueue{PID: q.PID, Addr: q.Addr.String(), Inode: q.Inode, Limit: q.Limit, Samples: q.Samples, Full: q.Full, Max: q.Max}
		if q.Samples > 0 {
			jq.MeanDepth = float64(q.Sum) / float64(q.Samples)
		}
		doc.ListenQueues = append(doc.ListenQueues, jq)
	}
	if t.TCPListen.Known {
		doc.TCPListen = &jsonTCPListen{Overflows: t.TCPListen.Overflows, Drops: t.TCPListen.Drops}
	}
	for i := range t.Events {
		e := &t.Events[i]
		if e.Kind != model.EvSignal {
			continue
		}
		doc.Signals = append(doc.Signals, jsonSignal{
			TimeNS: sinceStart(t, e.Time), PID: e.PID, TID: e.TID, Signal: e.Signal, Name: SignalName(e.Signal),
			Sender: e.Sender, SenderComm: e.SenderComm,
		})
	}
}

var signalNames = [...]string{1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
	7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS"}

// SignalName names a Linux signal number: "SIGKILL", or "signal 40".
func SignalName(sig int) string {
	if sig > 0 && sig < len(signalNames) && signalNames[sig] != "" {
		return signalNames[sig]
	}
	return "signal " + strconv.Itoa(sig)
}
