// Package analyzer turns a trace into findings an on-call engineer can act
// on: which thread is an event loop and what blocks it, which peers the
// process talks to and which of them nobody expected, connection churn, lock
// contention, and where each worker's time goes. It is pure: it reads a
// model.Trace and writes a model.Analysis, and never touches the system.
package analyzer

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// DefaultThreshold is the single-call stall threshold: 10ms is longer than a
// healthy event-loop iteration, and a loop frozen that long is visible as
// latency to every request it serves.
const DefaultThreshold = 10 * time.Millisecond

// DefaultStallShare is the share of wall time that turns repeated shorter
// blocking into a stall: 5% of a loop thread's time lost outside the loop is
// a throughput cut nobody would accept knowingly.
const DefaultStallShare = 0.05

// Config tunes the analysis. The zero value is usable.
type Config struct {
	// Threshold is the single-call stall threshold; 0 means DefaultThreshold.
	Threshold time.Duration
	// StallShare is the share of wall time that makes repeated shorter
	// blocking a stall; 0 means DefaultStallShare.
	StallShare float64
	// Expect lists the peers the process is supposed to talk to. Nil means no
	// expectations: no unexpected-connection findings unless Baseline is set.
	Expect []Endpoint
	// Baseline holds the peers of a known-good run.
	Baseline *Baseline
	// Resolve turns an Expect host name into addresses. Nil means only IP
	// literals and "localhost" match.
	Resolve func(host string) []netip.Addr
}

func (c Config) threshold() time.Duration {
	if c.Threshold > 0 {
		return c.Threshold
	}
	return DefaultThreshold
}

func (c Config) stallShare() float64 {
	if c.StallShare > 0 {
		return c.StallShare
	}
	return DefaultStallShare
}

// Analyze applies every rule to t. It never fails: what the trace does not
// show is left out, not guessed.
func Analyze(t *model.Trace, cfg Config) *model.Analysis {
	a := &model.Analysis{Threads: []model.ThreadSummary{}, Connections: []model.Connection{}, Findings: []model.Finding{}}
	if t == nil {
		return a
	}
	s := newSession(t, cfg)
	for _, th := range s.threads {
		a.Threads = append(a.Threads, th.summary())
	}
	conns := s.connections()
	for _, c := range conns {
		cc := c.Connection
		cc.Inbound = c.inbound
		a.Connections = append(a.Connections, cc)
	}
	stalls, sat := s.oneCause(s.loopStalls(), s.workerSaturation())
	a.Findings = append(a.Findings, s.acceptQueueOverflows()...)
	a.Findings = append(a.Findings, s.upstreamRefusals()...)
	a.Findings = append(a.Findings, s.workerDeaths()...)
	a.Findings = append(a.Findings, stalls...)
	a.Findings = append(a.Findings, s.connectionFindings(conns)...)
	a.Findings = append(a.Findings, s.lockContention()...)
	a.Findings = append(a.Findings, sat...)
	sortFindings(a.Findings)
	return a
}

// MaxSeverity is the highest severity among the findings, 0 when there are
// none; the CLI compares it with --fail-on.
func MaxSeverity(a *model.Analysis) model.Severity {
	var m model.Severity
	if a == nil {
		return m
	}
	for _, f := range a.Findings {
		m = max(m, f.Severity)
	}
	return m
}

// sortFindings orders by severity, then causes before the saturation they
// produce (a stalled single-worker loop is also a saturated one, and the
// stall is what to fix), then total time, then stable keys so the output is
// the same for the same trace.
func sortFindings(fs []model.Finding) {
	// The 502 chain reads in its order: the queue that overflowed, the
	// refusals it caused, then the rest; saturations come last.
	summary := func(f model.Finding) int {
		switch f.Kind {
		case model.KindAcceptQueueOverflow:
			return 0
		case model.KindUpstreamRefused:
			return 1
		case model.KindWorkerSaturation:
			return 3
		}
		return 2
	}
	slices.SortStableFunc(fs, func(x, y model.Finding) int {
		if c := cmp.Compare(y.Severity, x.Severity); c != 0 {
			return c
		}
		if c := cmp.Compare(summary(x), summary(y)); c != 0 {
			return c
		}
		if c := cmp.Compare(y.Total, x.Total); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Kind, y.Kind); c != 0 {
			return c
		}
		if c := cmp.Compare(x.PID, y.PID); c != 0 {
			return c
		}
		if c := cmp.Compare(x.TID, y.TID); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Syscall, y.Syscall); c != 0 {
			return c
		}
		return cmp.Compare(x.Peer, y.Peer)
	})
}

// share is d as a fraction of whole, 0 when whole is unknown.
func share(d, whole time.Duration) float64 {
	if whole <= 0 || d <= 0 {
		return 0
	}
	return float64(d) / float64(whole)
}
