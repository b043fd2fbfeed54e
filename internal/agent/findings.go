package agent

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// procIndex names the processes of one window for labels and lines.
type procIndex map[int]*model.Process

func newProcIndex(t *model.Trace) procIndex {
	ix := make(procIndex, len(t.Processes))
	for i := range t.Processes {
		ix[t.Processes[i].PID] = &t.Processes[i]
	}
	return ix
}

// names returns the comm, container and pod of pid, "" where unknown.
func (ix procIndex) names(pid int) (comm, container, pod string) {
	if p := ix[pid]; p != nil {
		return p.Comm, p.Container, p.Pod
	}
	return "", "", ""
}

// findingKey is what makes a finding the same one from window to window:
// its kind, the process it is about, and what it names (peer, syscall,
// library, file). Its severity and figures may change meanwhile.
type findingKey struct {
	kind                 string
	pid                  int
	comm, container, pod string
	peer, syscall, lib   string
	path                 string
}

func keyOf(f *model.Finding, procs procIndex) findingKey {
	k := findingKey{kind: f.Kind, pid: f.PID, peer: f.Peer, syscall: f.Syscall, lib: f.Library, path: f.Path}
	k.comm, k.container, k.pod = procs.names(f.PID)
	return k
}

// activeFinding is a finding present in the last window.
type activeFinding struct {
	key   findingKey
	f     model.Finding
	since time.Time
}

// findingTracker knows which findings are active and writes a line when
// one starts (it was not in the previous window) or ends (it is not in
// this one). A finding flapping at the edge of a rule's threshold makes a
// line per change: each says what the windows saw.
type findingTracker struct {
	log io.Writer

	mu     sync.RWMutex
	active []activeFinding // most severe first, as the analyzer ranks them
}

func newFindingTracker(log io.Writer) *findingTracker { return &findingTracker{log: log} }

// findingLine is one JSON line on the agent's stdout.
type findingLine struct {
	Time      string `json:"time"`  // RFC 3339, the end of the window that saw the change
	Event     string `json:"event"` // "finding-start" or "finding-end"
	Kind      string `json:"kind"`
	Severity  string `json:"severity"`
	PID       int    `json:"pid"`
	Process   string `json:"process"`
	Container string `json:"container,omitempty"`
	Pod       string `json:"pod,omitempty"` // the Kubernetes pod's UID
	Peer      string `json:"peer,omitempty"`
	Syscall   string `json:"syscall,omitempty"`
	Library   string `json:"library,omitempty"`
	Path      string `json:"path,omitempty"`
	Summary   string `json:"summary"`
	// Since is when an ending finding started.
	Since string `json:"since,omitempty"`
}

func (tr *findingTracker) update(end time.Time, findings []model.Finding, procs procIndex) error {
	prev := make(map[findingKey]activeFinding, len(tr.active))
	for _, a := range tr.active {
		prev[a.key] = a
	}
	next := make([]activeFinding, 0, len(findings))
	seen := make(map[findingKey]bool, len(findings))
	var lines []findingLine
	for i := range findings {
		f := &findings[i]
		k := keyOf(f, procs)
		if seen[k] { // the analyzer reported it twice: one is enough
			continue
		}
		seen[k] = true
		a := activeFinding{key: k, f: *f, since: end}
		if p, ok := prev[k]; ok {
			a.since = p.since
		} else {
			lines = append(lines, lineOf("finding-start", end, &a))
		}
		next = append(next, a)
	}
	for _, p := range tr.active {
		if !seen[p.key] {
			l := lineOf("finding-end", end, &p)
			l.Since = p.since.UTC().Format(time.RFC3339Nano)
			lines = append(lines, l)
		}
	}
	tr.mu.Lock()
	tr.active = next
	tr.mu.Unlock()
	if tr.log == nil {
		return nil
	}
	enc := json.NewEncoder(tr.log)
	for i := range lines {
		if err := enc.Encode(&lines[i]); err != nil {
			return err
		}
	}
	return nil
}

func lineOf(event string, at time.Time, a *activeFinding) findingLine {
	return findingLine{
		Time: at.UTC().Format(time.RFC3339Nano), Event: event,
		Kind: a.f.Kind, Severity: a.f.Severity.String(),
		PID: a.f.PID, Process: a.key.comm, Container: a.key.container, Pod: a.key.pod,
		Peer: a.f.Peer, Syscall: a.f.Syscall, Library: a.f.Library, Path: a.f.Path,
		Summary: a.f.Title,
	}
}

// current returns the active findings.
func (tr *findingTracker) current() []model.Finding {
	tr.mu.RLock()
	defer tr.mu.RUnlock()
	out := make([]model.Finding, len(tr.active))
	for i := range tr.active {
		out[i] = tr.active[i].f
	}
	return out
}
