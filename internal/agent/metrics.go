package agent

import (
	"github.com/snagtrace/snag/internal/version"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// The metrics are the state after the last window, accumulated from the
// windows' deltas so that counters only grow, and exported by one
// prometheus.Collector: a scrape reads the state under a read lock and
// builds constant metrics from it, with nothing kept per scrape.
// METRICS.md documents every family; keep the two in step.

// otherLabel is the value every label of a family's overflow series takes.
const otherLabel = "other"

// procLabels are the labels that say which process a series is about.
var procLabels = []string{"comm", "container", "pod"}

// metrics holds every family and the global figures.
type metrics struct {
	mu        sync.RWMutex
	maxSeries int
	window    uint64 // windows seen

	syscalls, errors, blocked, connects, findings *family
	latency                                       *family
	drops, bpfRun, bpfRuns                        *family

	snagCPU   float64 // seconds
	peakRSS   uint64
	events    uint64
	processes int
	// recordErrors counts windows the flight recorder could not save.
	recordErrors uint64
	// seriesDropped counts the label sets folded into "other", per family.
	seriesDropped map[string]uint64

	descSeriesDropped, descCPU, descRSS, descEvents, descWindows, descProcesses, descBuild, descRecordErrors *prometheus.Desc
	build                                                                                                    []string
}

// family is one metric family: its series by label values.
type family struct {
	name   string
	desc   *prometheus.Desc
	kind   prometheus.ValueType // CounterValue or GaugeValue; ignored for a histogram
	hist   bool
	series map[string]*series
}

// series is one label set's state.
type series struct {
	labels []string
	proc   string // the process key (comm, container, pod) of a per-process series; "" for others
	window uint64 // the last window that updated it
	value  float64
	hist   *histState
}

// histState is a histogram in the exported buckets: counts per bucket,
// not cumulative, the last one +Inf.
type histState struct {
	counts []uint64
	count  uint64
	sum    float64 // seconds
}

func newFamily(name, help string, kind prometheus.ValueType, labels ...string) *family {
	return &family{
		name:   name,
		desc:   prometheus.NewDesc(name, help, labels, nil),
		kind:   kind,
		series: map[string]*series{},
	}
}

func newMetrics(maxSeries int) *metrics {
	procSyscall := append(append([]string{}, procLabels...), "syscall", "class")
	procPeer := append(append([]string{}, procLabels...), "peer", "service")
	m := &metrics{
		maxSeries: maxSeries,
		syscalls: newFamily("snag_syscalls_total", "Syscalls that returned, per process name and syscall.",
			prometheus.CounterValue, procSyscall...),
		errors: newFamily("snag_syscall_errors_total", "Syscalls that returned an error, per process name and syscall.",
			prometheus.CounterValue, procSyscall...),
		latency: newFamily("snag_syscall_duration_seconds", "Syscall latency, per process name and syscall.",
			prometheus.UntypedValue, procSyscall...),
		blocked: newFamily("snag_blocked_seconds_total", "Time spent in syscalls at least as slow as the threshold on a connection to peer.",
			prometheus.CounterValue, procPeer...),
		connects: newFamily("snag_connections_total", "connect() calls to peer.",
			prometheus.CounterValue, procPeer...),
		findings: newFamily("snag_finding_active", "1 while a finding is active (seen in the last window).",
			prometheus.GaugeValue, append(append([]string{"kind", "severity"}, procLabels...), "pid", "peer", "syscall", "library")...),
		drops: newFamily("snag_dropped_events_total", "Events snag could not keep, by cause.",
			prometheus.CounterValue, "cause"),
		bpfRun: newFamily("snag_bpf_run_seconds_total", "Run time of snag's BPF programs, as the kernel's BPF statistics measure it.",
			prometheus.CounterValue, "program"),
		bpfRuns: newFamily("snag_bpf_runs_total", "Runs of snag's BPF programs.",
			prometheus.CounterValue, "program"),
		seriesDropped:     map[string]uint64{},
		descSeriesDropped: prometheus.NewDesc("snag_series_dropped_total", "Label sets folded into the family's \"other\" series once it held --max-series series.", []string{"metric"}, nil),
		descCPU:           prometheus.NewDesc("snag_cpu_seconds_total", "snag's own user and system CPU time.", nil, nil),
		descRSS:           prometheus.NewDesc("snag_peak_rss_bytes", "snag's peak resident set size.", nil, nil),
		descEvents:        prometheus.NewDesc("snag_events_total", "Records snag read from the kernel.", nil, nil),
		descWindows:       prometheus.NewDesc("snag_windows_total", "Windows analyzed.", nil, nil),
		descProcesses:     prometheus.NewDesc("snag_traced_processes", "Processes traced in the last window.", nil, nil),
		descBuild:         prometheus.NewDesc("snag_build_info", "1, labelled with snag's version, the commit it was built from and the Go version that built it.", []string{"version", "revision", "goversion"}, nil),
		descRecordErrors:  prometheus.NewDesc("snag_flight_recorder_errors_total", "Windows the flight recorder could not save (the log says why).", nil, nil),
		build:             buildLabels(version.Get()),
	}
	m.latency.hist = true
	return m
}

func (m *metrics) families() []*family {
	return []*family{m.syscalls, m.errors, m.latency, m.blocked, m.connects, m.findings, m.drops, m.bpfRun, m.bpfRuns}
}

// get returns the series of labels in f, made if new. A family at its
// maximum folds a new label set into its "other" series, which proc
// then does not own.
func (m *metrics) get(f *family, proc string, labels ...string) *series {
	for i, l := range labels {
		// A comm or a path is bytes; Prometheus takes UTF-8 only.
		labels[i] = strings.ToValidUTF8(l, "\uFFFD")
	}
	key := strings.Join(labels, "\x00")
	s, ok := f.series[key]
	if !ok {
		if len(f.series) >= m.maxSeries {
			m.seriesDropped[f.name]++
			other := make([]string, len(labels))
			for i := range other {
				other[i] = otherLabel
			}
			key, proc, labels = strings.Join(other, "\x00"), "", other
			if s, ok = f.series[key]; ok {
				s.window = m.window
				return s
			}
		}
		s = &series{labels: labels, proc: proc}
		if f.hist {
			s.hist = &histState{counts: make([]uint64, len(promBounds)+1)}
		}
		f.series[key] = s
	}
	s.window = m.window
	return s
}

// update adds a window's deltas.
func (m *metrics) update(t *model.Trace, an *model.Analysis, procs procIndex) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.window++

	live := map[string]bool{}
	m.processes = 0
	for _, p := range t.Processes {
		if !p.Exited {
			live[procKey(procs, p.PID)] = true
			m.processes++
		}
	}

	for i := range t.Syscalls {
		st := &t.Syscalls[i]
		comm, ctr, pod := procs.names(st.PID)
		labels := []string{comm, ctr, pod, st.Name, syscalls.ClassOf(st.Name).String()}
		key := procKey(procs, st.PID)
		m.get(m.syscalls, key, labels...).value += float64(st.Count)
		m.get(m.errors, key, labels...).value += float64(st.Errors)
		// Calls counted but not timed (those that never wait, unless the
		// tracer times every call) have no latency: no 87 empty series.
		if st.Hist.Count() > 0 {
			m.get(m.latency, key, labels...).hist.add(&st.Hist, st.Total.Seconds())
		}
	}

	services := make(map[string]string, len(an.Connections))
	for _, c := range an.Connections {
		if c.Service != "" {
			services[c.Peer.String()] = c.Service
		}
	}
	for i := range t.Events {
		ev := &t.Events[i]
		if ev.Peer.IsZero() {
			continue
		}
		peer := ev.Peer.String()
		comm, ctr, pod := procs.names(ev.PID)
		labels := []string{comm, ctr, pod, peer, services[peer]}
		switch ev.Kind {
		case model.EvSyscall:
			m.get(m.blocked, procKey(procs, ev.PID), labels...).value += max(ev.Duration, 0).Seconds()
		case model.EvConnect:
			m.get(m.connects, procKey(procs, ev.PID), labels...).value++
		}
	}

	// Findings are the last window's: the gauge family starts afresh.
	clear(m.findings.series)
	for i := range an.Findings {
		f := &an.Findings[i]
		comm, ctr, pod := procs.names(f.PID)
		m.get(m.findings, "", f.Kind, f.Severity.String(), comm, ctr, pod,
			strconv.Itoa(f.PID), f.Peer, f.Syscall, f.Library).value = 1
	}

	for _, c := range t.Drops.Causes() {
		m.get(m.drops, "", c.Name).value += float64(c.Count)
	}
	if t.Cost.Known {
		for _, p := range t.Cost.Programs {
			m.get(m.bpfRun, "", p.Name).value += p.RunTime.Seconds()
			m.get(m.bpfRuns, "", p.Name).value += float64(p.Runs)
		}
		m.snagCPU += t.Cost.SnagCPU.Seconds()
		m.peakRSS = max(m.peakRSS, t.Cost.SnagPeakRSS)
		m.events += t.Cost.Events
	}

	// A process gone (exited in an earlier window, or no longer selected)
	// takes its series with it: the state follows the processes, not the
	// days the agent ran.
	for _, f := range m.families() {
		for k, s := range f.series {
			if s.proc != "" && s.window != m.window && !live[s.proc] {
				delete(f.series, k)
			}
		}
	}
}

// procKey identifies the per-process series of pid.
func procKey(procs procIndex, pid int) string {
	comm, ctr, pod := procs.names(pid)
	return comm + "\x00" + ctr + "\x00" + pod
}

// promBounds are the upper bounds, in seconds, of the exported latency
// buckets: every other bound of model.Histogram's log-linear buckets
// (four per power of two, so a quantile interpolated inside one is off
// by at most 12.5%) from 16 µs to 34 s; faster calls fall in the first
// (a wait worth a dashboard takes longer), slower ones in +Inf: 85
// buckets, each a series in Prometheus. Every bound is a bound of the model's
// buckets, so each model bucket falls in exactly one exported bucket.
var promBounds, promBucketOf = promBuckets()

const (
	promFirstBucket = (14 - model.HistSubBits + 1) << model.HistSubBits // 2^14 ns
	promLastBucket  = (35 - model.HistSubBits + 1) << model.HistSubBits // 2^35 ns
	promStep        = 2
)

func promBuckets() ([]float64, []int) {
	var bounds []float64
	var ns []uint64
	for i := promFirstBucket; i <= promLastBucket; i += promStep {
		lo, _ := model.HistBounds(i)
		ns = append(ns, lo)
		bounds = append(bounds, float64(lo)/1e9)
	}
	of := make([]int, model.HistBuckets)
	for i := range of {
		_, hi := model.HistBounds(i)
		of[i] = sort.Search(len(ns), func(j int) bool { return ns[j] >= hi })
	}
	return bounds, of
}

func (h *histState) add(src *model.Histogram, sum float64) {
	src.ForEach(func(i int, c uint64) {
		h.counts[promBucketOf[i]] += c
		h.count += c
	})
	h.sum += sum
}

// Describe sends every family's description: the collector is checked.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range m.families() {
		ch <- f.desc
	}
	for _, d := range []*prometheus.Desc{m.descSeriesDropped, m.descCPU, m.descRSS, m.descEvents, m.descWindows, m.descProcesses, m.descBuild, m.descRecordErrors} {
		ch <- d
	}
}

// Collect sends the state after the last window.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, f := range m.families() {
		for _, s := range f.series {
			if f.hist {
				buckets := make(map[float64]uint64, len(promBounds))
				var cum uint64
				for j, b := range promBounds {
					cum += s.hist.counts[j]
					buckets[b] = cum
				}
				ch <- prometheus.MustNewConstHistogram(f.desc, s.hist.count, s.hist.sum, buckets, s.labels...)
				continue
			}
			ch <- prometheus.MustNewConstMetric(f.desc, f.kind, s.value, s.labels...)
		}
	}
	for _, f := range m.families() {
		ch <- prometheus.MustNewConstMetric(m.descSeriesDropped, prometheus.CounterValue, float64(m.seriesDropped[f.name]), f.name)
	}
	ch <- prometheus.MustNewConstMetric(m.descCPU, prometheus.CounterValue, m.snagCPU)
	ch <- prometheus.MustNewConstMetric(m.descRSS, prometheus.GaugeValue, float64(m.peakRSS))
	ch <- prometheus.MustNewConstMetric(m.descEvents, prometheus.CounterValue, float64(m.events))
	ch <- prometheus.MustNewConstMetric(m.descWindows, prometheus.CounterValue, float64(m.window))
	ch <- prometheus.MustNewConstMetric(m.descProcesses, prometheus.GaugeValue, float64(m.processes))
	ch <- prometheus.MustNewConstMetric(m.descBuild, prometheus.GaugeValue, 1, m.build...)
	ch <- prometheus.MustNewConstMetric(m.descRecordErrors, prometheus.CounterValue, float64(m.recordErrors))
}

func (m *metrics) recordFailed() {
	m.mu.Lock()
	m.recordErrors++
	m.mu.Unlock()
}

// buildLabels are snag_build_info's label values, from the one version
// every report names.
func buildLabels(v version.Info) []string { return []string{v.Version, v.Commit, v.Go} }
