// Package agent is snag serve's window aggregator: a tracer.WindowSink
// that analyzes every window of a continuous trace and keeps what the
// agent's outputs serve — findings as they start and end (JSON lines),
// Prometheus metrics accumulated over the windows, the last window's
// blocked-time profile and report, and a flight recorder of the last
// minutes as recording files.
//
// Memory stays bounded however long the agent runs: a window keeps at
// most Config.MaxEvents events, the metrics hold at most Config.MaxSeries
// series per family and forget a process's series once it is gone, and
// only the last window's report and profile are kept.
package agent

import (
	"bytes"
	"fmt"
	"github.com/snagtrace/snag/internal/otlpprof"
	"io"
	"log/slog"
	"sync"

	"github.com/google/pprof/profile"

	"github.com/snagtrace/snag/analyzer"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/tracer"
	"github.com/snagtrace/snag/report"
)

// DefaultMaxEvents bounds one window's events: about 300 bytes each, so
// some 30 MiB; the aggregates, and so the metrics, stay exact past it.
const DefaultMaxEvents = 100_000

// DefaultMaxSeries bounds each metric family: enough for the syscalls of
// a few dozen process names (some 30 each), few enough that a host
// running thousands of short-lived commands does not overwhelm the
// Prometheus scraping it (a latency histogram is 87 series in Prometheus
// per label set).
const DefaultMaxSeries = 1000

// Config sets up an Agent.
type Config struct {
	// MaxEvents is the most events one window keeps for its analysis; the
	// rest are counted as dropped over the limit. 0: DefaultMaxEvents.
	MaxEvents int
	// MaxSeries is the most series of one metric family; label sets past
	// it are folded into one whose labels say "other". 0: DefaultMaxSeries.
	MaxSeries int
	// Analyzer configures the analysis of each window; its Threshold is
	// taken from the window.
	Analyzer analyzer.Config
	// Log receives one JSON line per finding that starts or ends (stdout,
	// for journald or Loki); nil: none.
	Log io.Writer
	// Recorder, when non-nil, keeps every window as a recording file.
	Recorder *Recorder
	// Profile, when non-nil, receives each window's blocked-time profile
	// with the window it covers (valid during the call, as for Window),
	// for an exporter that pushes profiles (OTLP); p is the caller's.
	Profile func(p *profile.Profile, w *model.Trace)
	// OTLP, when non-nil, is sent each window's profile, described by
	// what the window's processes share (otlpprof.WindowResource).
	OTLP *otlpprof.Exporter
}

// An Agent is the sink of snag serve. Run calls its sink methods from
// one goroutine; its outputs (Collector, Handler, BlockedProfile,
// ActiveFindings) may be read from any other at the same time.
type Agent struct {
	cfg Config

	// The window being received: its events, bounded.
	events    []model.Event
	overLimit uint64

	findings *findingTracker
	metrics  *metrics

	mu   sync.RWMutex
	last *snapshot // the last window analyzed; nil before the first
}

// snapshot is what the HTTP endpoints serve of the last window, rendered
// when it ended so that no trace outlives its Window call.
type snapshot struct {
	json    []byte           // its snag/v1 report
	profile *profile.Profile // its blocked time; never modified once stored
	err     error            // why the profile could not be built
}

// New returns an Agent.
func New(cfg Config) *Agent {
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.MaxSeries <= 0 {
		cfg.MaxSeries = DefaultMaxSeries
	}
	return &Agent{
		cfg:      cfg,
		findings: newFindingTracker(cfg.Log),
		metrics:  newMetrics(cfg.MaxSeries),
	}
}

var _ tracer.WindowSink = (*Agent)(nil)

// Start is called once tracing began; the agent has nothing to set up.
func (a *Agent) Start(*model.Trace) error { return nil }

// Event keeps a copy of e for the window's analysis, up to MaxEvents.
func (a *Agent) Event(e *model.Event) error {
	if len(a.events) >= a.cfg.MaxEvents {
		a.overLimit++
		return nil
	}
	// The event is valid only during the call, but what it points to
	// (stack, data) is not reused: a copy of the struct is enough, as for
	// the tracer's own in-memory events.
	a.events = append(a.events, *e)
	return nil
}

// Window analyzes the window that just ended, with the events received
// since the last one: finding lines, metrics, flight recorder, and the
// snapshot the HTTP endpoints serve.
func (a *Agent) Window(w *model.Trace) error {
	t := *w // the header and aggregates, valid during this call
	t.Events = a.events
	t.Drops.OverLimit += a.overLimit
	// Nothing outlives this call that points into the events (the
	// snapshot is rendered, the recording written), so the next window
	// reuses their slice.
	defer func() { a.events, a.overLimit = a.events[:0], 0 }()

	acfg := a.cfg.Analyzer
	acfg.Threshold = t.Threshold
	an := analyzer.Analyze(&t, acfg)

	procs := newProcIndex(&t)
	end := t.Start.Add(t.Duration)
	if err := a.findings.update(end, an.Findings, procs); err != nil {
		return fmt.Errorf("write finding lines: %w", err)
	}
	a.metrics.update(&t, an, procs)

	snap := &snapshot{}
	var buf bytes.Buffer
	if err := report.JSON(&buf, &t, an); err != nil {
		return fmt.Errorf("render the window's report: %w", err)
	}
	snap.json = buf.Bytes()
	snap.profile, snap.err = report.Profile(&t, an)
	a.mu.Lock()
	a.last = snap
	a.mu.Unlock()
	if a.cfg.Profile != nil && snap.err == nil {
		a.cfg.Profile(snap.profile.Copy(), &t)
	}
	if a.cfg.OTLP != nil && snap.err == nil {
		a.cfg.OTLP.Push(snap.profile.Copy(), otlpprof.WindowResource(&t))
	}

	if a.cfg.Recorder != nil {
		if err := a.cfg.Recorder.Write(&t); err != nil {
			// A full disk costs the flight recorder a window, not the
			// agent its metrics: said in the log and counted.
			slog.Warn("flight recorder", "error", err)
			a.metrics.recordFailed()
		}
	}
	return nil
}

// Finish is called when tracing ends. A trace cut short keeps its last
// partial window unanalyzed: the flight recorder and the metrics hold
// every complete one.
func (a *Agent) Finish(*model.Trace) error { return nil }

// BlockedProfile returns the last window's blocked time as a pprof
// profile (as `snag attach -o FILE.pb.gz` writes it, Python frames
// included), a copy the caller may change; nil before the first window.
func (a *Agent) BlockedProfile() (*profile.Profile, error) {
	a.mu.RLock()
	s := a.last
	a.mu.RUnlock()
	if s == nil {
		return nil, nil
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.profile.Copy(), nil
}

// ActiveFindings returns the findings active after the last window, in
// their order of importance.
func (a *Agent) ActiveFindings() []model.Finding { return a.findings.current() }
