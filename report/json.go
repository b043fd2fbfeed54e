package report

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/version"
)

// The snag/v1 document. These structs, not the model's, define the JSON:
// the model may change shape, the schema only grows (DESIGN.md, "The
// model's JSON"). Every slice is non-nil so arrays encode as [], never null.

type jsonDoc struct {
	Schema          string             `json:"schema"`
	Generator       string             `json:"generator"` // the snag that wrote it (version.Info.String)
	Target          jsonTarget         `json:"target"`
	Source          string             `json:"source"`
	Arch            string             `json:"arch"`
	Start           string             `json:"start"` // RFC 3339, "" when unknown
	DurationNS      int64              `json:"duration_ns"`
	ThresholdNS     int64              `json:"threshold_ns"`
	Events          int                `json:"events"`
	DroppedEvents   uint64             `json:"dropped_events"`
	Drops           jsonDrops          `json:"drops"`
	Processes       []jsonProcess      `json:"processes"`
	Threads         []jsonThread       `json:"threads"`
	Syscalls        []jsonSyscall      `json:"syscalls"`
	Connections     []jsonConnection   `json:"connections"`
	Findings        []jsonFinding      `json:"findings"`
	BlockedAtAttach []jsonBlockedState `json:"blocked_at_attach"`
	ListenQueues    []jsonListenQueue  `json:"listen_queues,omitempty"` // json_chain.go
	TCPListen       *jsonTCPListen     `json:"tcp_listen,omitempty"`
	Signals         []jsonSignal       `json:"signals,omitempty"`
	Cost            *jsonCost          `json:"cost,omitempty"` // cost.go
	Notes           []string           `json:"notes,omitempty"`
}

type jsonTarget struct {
	PID     int      `json:"pid"`
	Comm    string   `json:"comm"`
	Cmdline []string `json:"cmdline"`
	Exe     string   `json:"exe"`
}

type jsonDrops struct {
	RingBuffer   uint64 `json:"ring_buffer"`
	AggregateMap uint64 `json:"aggregate_map"`
	InFlightMap  uint64 `json:"in_flight_map"`
	StackRead    uint64 `json:"stack_read"`
	FDMap        uint64 `json:"fd_map,omitempty"`
	Unparsed     uint64 `json:"unparsed"`
	Backlog      uint64 `json:"backlog,omitempty"`
	StackBacklog uint64 `json:"stack_backlog,omitempty"`
	OverLimit    uint64 `json:"over_limit"`
}

type jsonProcess struct {
	PID      int      `json:"pid"`
	PPID     int      `json:"ppid"`
	Comm     string   `json:"comm"`
	Cmdline  []string `json:"cmdline"`
	Exe      string   `json:"exe"`
	Exited   bool     `json:"exited"`
	ExitCode int      `json:"exit_code"`
	Signal   int      `json:"signal,omitempty"` // that killed it
	// Runtime is omitted when nothing is known about it.
	Runtime *jsonRuntime `json:"runtime,omitempty"`
}

// jsonRuntime names what runs a process's code with the model's words:
// name "cpython", "node", "go", "jvm", "ruby", "native"; loop "gevent",
// "eventlet", "asyncio", "uvloop", "libuv", "netty"; "" when unknown.
type jsonRuntime struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Loop    string `json:"loop"`
}

type jsonThread struct {
	TID       int          `json:"tid"`
	PID       int          `json:"pid"`
	Name      string       `json:"name"`
	Role      string       `json:"role"` // "" when no analysis ran
	LoopWait  string       `json:"loop_wait"`
	Evidence  string       `json:"evidence,omitempty"` // why the role
	OnCPUNS   int64        `json:"on_cpu_ns"`
	BlockedNS int64        `json:"blocked_ns"`
	IdleNS    int64        `json:"idle_ns"`
	Syscalls  uint64       `json:"syscalls"`
	SyscallNS int64        `json:"syscall_ns"` // all time inside syscalls
	Started   bool         `json:"started"`
	Exited    bool         `json:"exited"`
	Budget    []jsonBudget `json:"budget"`
}

type jsonBudget struct {
	Category string `json:"category"`
	NS       int64  `json:"ns"`
}

type jsonSyscall struct {
	Name   string `json:"name"`
	Op     string `json:"op,omitempty"` // futex's operation class: wait, wait_bitset, lock_pi, wake
	Nr     int    `json:"nr"`
	TID    int    `json:"tid"`
	PID    int    `json:"pid"`
	Count  uint64 `json:"count"`
	Errors uint64 `json:"errors"`
	// Untimed: counted, not timed (the call never waits); the times are 0.
	Untimed bool  `json:"untimed,omitempty"`
	TotalNS int64 `json:"total_ns"`
	P50NS   int64 `json:"p50_ns"`
	P99NS   int64 `json:"p99_ns"`
	MaxNS   int64 `json:"max_ns"`
}

type jsonConnection struct {
	Peer                    string `json:"peer"`
	Direction               string `json:"direction"` // inbound: clients of ours, peer is their host
	Family                  string `json:"family"`
	Service                 string `json:"service"`
	Count                   uint64 `json:"count"` // connects + accepts + sends
	Connects                uint64 `json:"connects"`
	Accepts                 uint64 `json:"accepts"`
	Sends                   uint64 `json:"sends"`
	TIDs                    []int  `json:"tids"`
	Expected                bool   `json:"expected"`
	EstablishedBeforeAttach bool   `json:"established_before_attach"`
	// First and last use, in ns since the trace began (0 for before).
	FirstSeenNS      int64 `json:"first_seen_ns"`
	LastSeenNS       int64 `json:"last_seen_ns"`
	ConnectNS        int64 `json:"connect_ns"`
	MedianLifetimeNS int64 `json:"median_lifetime_ns"`
}

type jsonFinding struct {
	Kind     string  `json:"kind"`
	Severity string  `json:"severity"`
	Title    string  `json:"title"`
	PID      int     `json:"pid"`
	TID      int     `json:"tid"`
	Thread   string  `json:"thread"`
	Syscall  string  `json:"syscall"`
	Count    uint64  `json:"count"`
	TotalNS  int64   `json:"total_ns"`
	P50NS    int64   `json:"p50_ns"`
	MaxNS    int64   `json:"max_ns"`
	Share    float64 `json:"share"`
	Peer     string  `json:"peer"`
	Service  string  `json:"service"`
	Library  string  `json:"library"`
	Path     string  `json:"path,omitempty"`    // the file, for file I/O
	Runtime  string  `json:"runtime,omitempty"` // the process's runtime in words
	// Coroutine is the greenlet or asyncio task the stack ran in.
	Coroutine string   `json:"coroutine,omitempty"`
	Stack     []string `json:"stack"`
	Detail    string   `json:"detail"`
	Hint      string   `json:"hint"`
}

type jsonBlockedState struct {
	PID     int    `json:"pid"`
	TID     int    `json:"tid"`
	Thread  string `json:"thread"`
	Running bool   `json:"running"` // on CPU or runnable, not in a syscall
	Nr      int    `json:"nr"`
	Syscall string `json:"syscall"`
	FD      int    `json:"fd"` // -1 when the syscall has no fd argument
	Peer    string `json:"peer"`
	Wchan   string `json:"wchan"`
}

// JSON writes the snag/v1 document: the trace's aggregates and the
// analysis, in a stable order, indented for people who read it too.
func JSON(w io.Writer, t *model.Trace, a *model.Analysis) error {
	if t == nil {
		return errors.New("json report: no trace")
	}
	doc := buildJSONDoc(t, a)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // peers and hints are not embedded in HTML
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("json report: %w", err)
	}
	return nil
}

func buildJSONDoc(t *model.Trace, a *model.Analysis) *jsonDoc {
	if a == nil {
		a = &model.Analysis{}
	}
	names := threadNames(t, a)
	doc := &jsonDoc{
		Schema:    model.Schema,
		Generator: version.Get().String(),
		Target: jsonTarget{
			PID: t.Target.PID, Comm: t.Target.Comm, Cmdline: nonNil(t.Target.Cmdline), Exe: t.Target.Exe,
		},
		Source:        t.Source,
		Arch:          t.Arch,
		DurationNS:    int64(t.Duration),
		ThresholdNS:   int64(t.Threshold),
		Events:        len(t.Events),
		DroppedEvents: t.Drops.Total(),
		Drops: jsonDrops{
			RingBuffer: t.Drops.RingBuffer, AggregateMap: t.Drops.AggregateMap,
			InFlightMap: t.Drops.InFlightMap, StackRead: t.Drops.StackRead, FDMap: t.Drops.FDMap,
			Unparsed: t.Drops.Unparsed,
			Backlog:  t.Drops.Backlog, StackBacklog: t.Drops.StackBacklog,
			OverLimit: t.Drops.OverLimit,
		},
		Processes:       make([]jsonProcess, 0, len(t.Processes)),
		Syscalls:        make([]jsonSyscall, 0, len(t.Syscalls)),
		Connections:     make([]jsonConnection, 0, len(a.Connections)),
		Findings:        make([]jsonFinding, 0, len(a.Findings)),
		BlockedAtAttach: make([]jsonBlockedState, 0, len(t.Blocked)),
		Notes:           t.Notes,
	}
	if !t.Start.IsZero() {
		doc.Start = t.Start.Format(time.RFC3339Nano)
	}
	doc.addChain(t)
	doc.Cost = newJSONCost(t)
	for _, p := range t.Processes {
		jp := jsonProcess{
			PID: p.PID, PPID: p.PPID, Comm: p.Comm, Cmdline: nonNil(p.Cmdline), Exe: p.Exe,
			Exited: p.Exited, ExitCode: p.ExitCode, Signal: p.Signal,
		}
		if !p.Runtime.IsZero() {
			jp.Runtime = &jsonRuntime{Name: p.Runtime.Name, Version: p.Runtime.Version, Loop: p.Runtime.Loop}
		}
		doc.Processes = append(doc.Processes, jp)
	}

	rows, _ := threadRows(t, a)
	doc.Threads = make([]jsonThread, 0, len(rows))
	for _, r := range rows {
		jt := jsonThread{
			TID: r.TID, PID: r.PID, Name: r.Name, Role: string(r.Role), LoopWait: r.LoopWait, Evidence: r.Evidence,
			OnCPUNS: int64(r.OnCPU), BlockedNS: int64(r.Blocked), IdleNS: int64(r.Idle),
			Syscalls: r.Syscalls, SyscallNS: int64(r.InSyscall), Started: r.Started, Exited: r.Exited,
			Budget: make([]jsonBudget, 0, len(r.Budget)),
		}
		for _, b := range r.Budget {
			jt.Budget = append(jt.Budget, jsonBudget{Category: b.Category, NS: int64(b.Time)})
		}
		doc.Threads = append(doc.Threads, jt)
	}

	for i := range t.Syscalls {
		s := &t.Syscalls[i]
		doc.Syscalls = append(doc.Syscalls, jsonSyscall{
			Name: syscallName(s.Name, s.Nr), Op: s.Op, Nr: s.Nr, TID: s.TID, PID: s.PID,
			Count: s.Count, Errors: s.Errors, Untimed: s.Untimed, TotalNS: int64(s.Total),
			P50NS: int64(s.Quantile(0.5)), P99NS: int64(s.Quantile(0.99)), MaxNS: int64(s.Max),
		})
	}
	// Per thread, the heaviest syscall first; names, then futex ops, break ties.
	slices.SortStableFunc(doc.Syscalls, func(x, y jsonSyscall) int {
		if c := compareThreadKey(threadKey{x.PID, x.TID}, threadKey{y.PID, y.TID}); c != 0 {
			return c
		}
		if c := cmp.Compare(y.TotalNS, x.TotalNS); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Op, y.Op))
	})

	for _, c := range a.Connections {
		tids := slices.Clone(c.TIDs)
		slices.Sort(tids)
		doc.Connections = append(doc.Connections, jsonConnection{
			Peer: connPeer(c), Direction: connDirection(c), Family: string(c.Peer.Family), Service: c.Service,
			Count: connCount(c), Connects: c.Connects, Accepts: c.Accepts, Sends: c.Sends,
			TIDs: nonNil(slices.Compact(tids)), Expected: c.Expected, EstablishedBeforeAttach: c.BeforeAttach,
			FirstSeenNS: sinceStart(t, c.FirstSeen), LastSeenNS: sinceStart(t, c.LastSeen),
			ConnectNS: int64(c.ConnectTime), MedianLifetimeNS: int64(c.MedianLifetime),
		})
	}
	slices.SortStableFunc(doc.Connections, func(x, y jsonConnection) int {
		if c := strings.Compare(x.Peer, y.Peer); c != 0 {
			return c
		}
		return strings.Compare(x.Service, y.Service)
	})

	// Findings keep the analyzer's order: most severe first is its contract.
	for _, f := range a.Findings {
		thread := f.Thread
		if thread == "" {
			thread = names[threadKey{f.PID, f.TID}]
		}
		doc.Findings = append(doc.Findings, jsonFinding{
			Kind: f.Kind, Severity: f.Severity.String(), Title: f.Title,
			PID: f.PID, TID: f.TID, Thread: thread, Syscall: f.Syscall, Count: f.Count,
			TotalNS: int64(f.Total), P50NS: int64(f.P50), MaxNS: int64(f.Max), Share: finite(f.Share),
			Peer: f.Peer, Service: f.Service, Library: f.Library, Path: f.Path, Runtime: f.Runtime, Coroutine: f.Coroutine, Stack: nonNil(f.Stack),
			Detail: f.Detail, Hint: f.Hint,
		})
	}

	for _, b := range t.Blocked {
		doc.BlockedAtAttach = append(doc.BlockedAtAttach, jsonBlockedState{
			PID: b.PID, TID: b.TID, Thread: names[threadKey{b.PID, b.TID}], Running: b.Running,
			Nr: b.Nr, Syscall: b.Syscall, FD: b.FD, Peer: b.Peer.String(), Wchan: b.Wchan,
		})
	}
	slices.SortStableFunc(doc.BlockedAtAttach, func(x, y jsonBlockedState) int {
		return compareThreadKey(threadKey{x.PID, x.TID}, threadKey{y.PID, y.TID})
	})
	return doc
}

// sinceStart converts an event-clock time to ns since the trace began,
// clamping times before it (or unknown, zero) to 0.
func sinceStart(t *model.Trace, ns uint64) int64 {
	if ns <= t.StartNS {
		return 0
	}
	return int64(min(ns-t.StartNS, math.MaxInt64))
}

// finite replaces NaN and infinities, which JSON cannot carry, with 0.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// nonNil returns s, or an empty slice so it encodes as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
