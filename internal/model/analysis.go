package model

import (
	"fmt"
	"strings"
	"time"
)

// Analysis is what the analyzer concludes from a Trace. Reports render it
// next to the Trace and never compute any of it themselves.
type Analysis struct {
	Threads     []ThreadSummary
	Connections []Connection
	Findings    []Finding // most severe first
}

// Role is what a thread does, judged from where it waits.
type Role string

const (
	RoleEventLoop Role = "event-loop"
	// RoleSyncWorker serves one connection at a time (prefork, thread or
	// process per connection): blocking inside a request is its normal work.
	RoleSyncWorker Role = "sync-worker"
	RoleWorker     Role = "worker"
	RoleAcceptor   Role = "acceptor"
	RoleIdle       Role = "idle"
	RoleOther      Role = "other"
)

// ThreadSummary is one thread's role and time budget.
type ThreadSummary struct {
	PID, TID int
	Name     string
	Role     Role
	LoopWait string // the readiness syscall an event loop or sync worker waits in for work
	// Evidence says in a few words why the thread got its role.
	Evidence string
	OnCPU    time.Duration
	Blocked  time.Duration // in syscalls other than the loop's own wait
	Idle     time.Duration // in the loop wait, accept or a pool's futex
	Syscalls uint64
	// Budget splits the wall time by category ("cpu", "idle", "futex",
	// "sleep", "file", "peer 127.0.0.1:3306", …).
	Budget []BudgetItem
}

// BudgetItem is one slice of a thread's wall time.
type BudgetItem struct {
	Category string
	Time     time.Duration
}

// Connection is one peer the traced processes talked to.
type Connection struct {
	Peer         Addr
	Service      string // "mysql", "redis", … from the port or first bytes
	Connects     uint64 // connect() calls during the trace
	Accepts      uint64
	Sends        uint64 // sendto/sendmsg with this address
	TIDs         []int
	FirstSeen    uint64 // event clock
	LastSeen     uint64
	Expected     bool
	BeforeAttach bool // already established when tracing began
	// Inbound: clients that connected to us, one entry per client host
	// (Peer carries no port: theirs are ephemeral).
	Inbound        bool
	ConnectTime    time.Duration
	MedianLifetime time.Duration
}

// Severity ranks findings.
type Severity int

const (
	SeverityLow Severity = iota + 1
	SeverityMedium
	SeverityHigh
)

func (s Severity) String() string {
	switch s {
	case SeverityLow:
		return "low"
	case SeverityMedium:
		return "medium"
	case SeverityHigh:
		return "high"
	}
	return "none"
}

// ParseSeverity reads "low", "medium" or "high".
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(s) {
	case "low":
		return SeverityLow, nil
	case "medium":
		return SeverityMedium, nil
	case "high":
		return SeverityHigh, nil
	}
	return 0, fmt.Errorf("unknown severity %q (want high, medium or low)", s)
}

// Finding kinds.
const (
	KindLoopStall            = "loop-stall"
	KindUnexpectedConnection = "unexpected-connection"
	KindConnectionChurn      = "connection-churn"
	KindLockContention       = "lock-contention"
	KindWorkerSaturation     = "worker-saturation"
	KindAcceptQueueOverflow  = "accept-queue-overflow"
	KindUpstreamRefused      = "upstream-refused"
	KindWorkerKilled         = "worker-killed"
	KindWorkerChurn          = "worker-churn"
)

// Finding is one conclusion with its evidence and what to do about it.
type Finding struct {
	Kind     string
	Severity Severity
	Title    string
	PID, TID int
	Thread   string
	Syscall  string
	Count    uint64
	Total    time.Duration
	P50, Max time.Duration
	Share    float64 // Total as a fraction of the trace's wall time
	Peer     string
	Service  string
	Library  string // shared object that made the call, once stacks exist
	Path     string // the file a finding about file I/O concerns
	Runtime  string // the process's runtime in words ("CPython 3.11.2 with gevent")
	// Coroutine names the greenlet or asyncio task the stack ran in
	// ("greenlet make_app.<locals>.app", "asyncio task main()"), "" when
	// the stack shows none.
	Coroutine string
	Stack     []string // leaf first
	Detail    string   // the consequence in words
	Hint      string
}
