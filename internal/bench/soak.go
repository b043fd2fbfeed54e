package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// The soak runs `snag serve` for a long while over a mix of processes and
// holds it to the targets of an always-on agent.
const (
	soakInterval      = 15 * time.Second // serve's --interval, its default
	MinSoak           = time.Minute      // enough windows for a slope
	serveStartTimeout = 3 * time.Minute
	// Targets of the agent over the traced part of the soak.
	targetSoakCPU = 0.01      // of one core
	targetSoakRSS = 100 << 20 // bytes, peak
	// soakHorizon: at the RSS slope of the second half, the agent must
	// not reach targetSoakRSS sooner than this.
	soakHorizon = 24 * time.Hour
)

// soakKind is one kind of process in the soak's mix.
type soakKind struct {
	name, unit string
	procs      int // processes of this kind the mix runs
	perLoad    int // processes one workload runs
	newLoad    func(marker string) workload
}

func workerKind(name, unit string, procs int) soakKind {
	return soakKind{name, unit, procs, 1, func(marker string) workload {
		return &workerLoad{kind: name, unitStr: unit, args: []string{marker}}
	}}
}

// soakMix is the soak's 50 processes (and the short-lived ones churn
// starts): two busy ones bouncing over pipes and futexes, twenty calling
// getppid 1,000 times a second, twenty-five asleep, one starting a short
// process ten times a second, and redis-server under redis-benchmark.
var soakMix = []soakKind{
	workerKind("mtmix", "ops/s", 2),
	workerKind("paced", "calls/s", 20),
	workerKind("idle", "wake-ups/s", 25),
	workerKind("churn", "procs/s", 1),
	{"redis", "req/s", 2, 2, func(string) workload { return &redisLoad{} }},
}

// soakSelector is the one --cmdline regexp that picks the mix's processes
// and no other: the workers carry marker as their last argument.
func soakSelector(marker string) string {
	// redis-server rewrites its arguments into one: "/usr/bin/redis-server
	// 127.0.0.1:16379".
	return fmt.Sprintf(`%s \S+ %s$|^\S*redis-server 127\.0\.0\.1:%d|^\S*redis-benchmark .*-p %d `,
		regexp.QuoteMeta(WorkerArg), regexp.QuoteMeta(marker), redisPort, redisPort)
}

// soakGroup is the running processes of one kind.
type soakGroup struct {
	kind  soakKind
	loads []workload
}

// soakSample is the agent as seen at one moment: halfway through a
// window, or when it began to answer.
type soakSample struct {
	at       time.Duration // since the traced part began
	rss      int64         // bytes, /proc/PID/stat
	cpu      time.Duration // /proc/PID/stat
	metrics  bool          // whether /metrics answered
	mCPU     float64       // snag_cpu_seconds_total
	mPeakRSS float64       // snag_peak_rss_bytes
	dropped  map[string]float64
	windows  float64 // snag_windows_total
	events   float64 // snag_events_total
	traced   float64 // snag_traced_processes
}

// soakRate is one kind's throughput, untraced and traced.
type soakRate struct {
	kind             soakKind
	procs            int
	untraced, traced float64
	skipped          string
}

type soakResult struct {
	duration   time.Duration // traced
	startup    time.Duration // from serve's start to its first answer
	selector   string
	procs      int
	rates      []soakRate
	base       soakSample   // when the traced part began
	samples    []soakSample // one per window
	life       usage        // the agent's whole life, from the kernel
	loadBefore string
	loadAfter  string
	notes      []string
}

// benchSoak starts the mix, measures it untraced for half of d, traced by
// snag serve for d, then untraced for another half: bracketing the traced
// part between two untraced halves makes a steady drift in the machine's
// other load cancel out of the ratio instead of adding to it.
func benchSoak(ctx context.Context, snagPath string, d time.Duration, log io.Writer) (*soakResult, error) {
	res := &soakResult{duration: d, loadBefore: loadAverage()}
	marker := "soak-" + strconv.Itoa(os.Getpid())
	res.selector = soakSelector(marker)
	var groups []*soakGroup
	defer func() {
		for _, g := range groups {
			for _, l := range g.loads {
				l.stop()
			}
		}
	}()
	for _, k := range soakMix {
		g := &soakGroup{kind: k}
		groups = append(groups, g)
		for range k.procs / k.perLoad {
			l := k.newLoad(marker)
			if err := l.start(ctx); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				// The soak is about the agent: a kind that cannot run
				// here is left out and said so.
				res.notes = append(res.notes, fmt.Sprintf("%s left out: %v", k.name, err))
				fmt.Fprintf(log, "soak: %s left out: %v\n", k.name, err)
				break
			}
			g.loads = append(g.loads, l)
		}
		res.procs += len(g.loads) * k.perLoad
	}
	fmt.Fprintf(log, "soak: %d processes running; untraced for %s\n", res.procs, d/2)
	if err := sleepCtx(ctx, warmup); err != nil {
		return nil, err
	}
	untraced := make([]uint64, len(groups))
	var untracedFor time.Duration
	addUntraced := func() error {
		n, took, err := soakPhase(ctx, groups, d/2, nil)
		for i := range n {
			untraced[i] += n[i]
		}
		untracedFor += took
		return err
	}
	if err := addUntraced(); err != nil {
		return nil, err
	}

	fmt.Fprintf(log, "soak: snag serve --cmdline %q for %s\n", res.selector, d)
	traced, tracedFor, err := soakTraced(ctx, snagPath, groups, d, res, log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "soak: untraced again for %s\n", d/2)
	if err := addUntraced(); err != nil {
		return nil, err
	}
	for i, g := range groups {
		r := soakRate{kind: g.kind, procs: g.kind.procs}
		if len(g.loads) == 0 {
			r.skipped = "left out"
		} else {
			r.untraced = float64(untraced[i]) / untracedFor.Seconds()
			r.traced = float64(traced[i]) / tracedFor.Seconds()
		}
		res.rates = append(res.rates, r)
	}
	res.loadAfter = loadAverage()
	return res, nil
}

// soakPhase counts every group's operations over d; tick, when set, is
// called every soakInterval and at the end, and its error ends the phase.
func soakPhase(ctx context.Context, groups []*soakGroup, d time.Duration, tick func(at time.Duration) error) ([]uint64, time.Duration, error) {
	n0, err := soakCounts(groups)
	if err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	// Every soakInterval, and at the end.
	for at := min(soakInterval, d); ; at = min(at+soakInterval, d) {
		if err := sleepCtx(ctx, time.Until(t0.Add(at))); err != nil {
			return nil, 0, err
		}
		if tick != nil {
			if err := tick(time.Since(t0)); err != nil {
				return nil, 0, err
			}
		}
		if at == d {
			break
		}
	}
	n1, err := soakCounts(groups)
	if err != nil {
		return nil, 0, err
	}
	took := time.Since(t0)
	for i := range n1 {
		n1[i] -= n0[i]
	}
	return n1, took, nil
}

func soakCounts(groups []*soakGroup) ([]uint64, error) {
	out := make([]uint64, len(groups))
	for i, g := range groups {
		for _, l := range g.loads {
			n, err := l.count()
			if err != nil {
				return nil, fmt.Errorf("soak: %w", err)
			}
			out[i] += n
		}
	}
	return out, nil
}

// soakTraced runs snag serve over the mix for d, sampling it every window.
func soakTraced(ctx context.Context, snagPath string, groups []*soakGroup, d time.Duration, res *soakResult, log io.Writer) ([]uint64, time.Duration, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, 0, err
	}
	t := snagTracer("snag serve", snagPath, 0)
	t.args = func(int) []string {
		return []string{"serve", "--cmdline", res.selector, "--interval", soakInterval.String(), "--listen", addr}
	}
	// It starts by reading /proc for every process and the symbols of
	// those it selects, which a busy machine can make slow.
	t.startTimeout = serveStartTimeout
	started := time.Now()
	a, err := t.attach(ctx, 0)
	if err != nil {
		return nil, 0, err
	}
	pa := a.(*procAttachment)
	defer func() {
		if pa != nil {
			pa.kill()
		}
	}()
	url := "http://" + addr + "/metrics"
	sample := func(at time.Duration) (soakSample, error) {
		select {
		case <-pa.exited:
			return soakSample{}, fmt.Errorf("snag serve exited (%s): %s", pa.cmd.ProcessState, pa.lastLine())
		default:
		}
		return sampleServe(pa.tracerPID(), url, at)
	}
	// The agent answers once its programs are attached and its listener
	// is up; its start-up is not what the soak measures.
	deadline := time.Now().Add(serveStartTimeout)
	for {
		if res.base, err = sample(0); err == nil && res.base.metrics {
			break
		}
		if err != nil || time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("snag serve did not answer on %s: %v", url, err)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, 0, err
		}
	}
	// Sample halfway through each window, well clear of its end, when the
	// agent moves its counters.
	if err := sleepCtx(ctx, soakInterval/2); err != nil {
		return nil, 0, err
	}
	res.startup = time.Since(started)
	fmt.Fprintf(log, "soak: snag serve answered after %s\n", res.startup.Round(time.Millisecond))
	n, took, err := soakPhase(ctx, groups, d, func(at time.Duration) error {
		s, err := sample(at)
		if err != nil {
			return err
		}
		res.samples = append(res.samples, s)
		fmt.Fprintf(log, "soak: %s: RSS %s, CPU %s, %v windows, %v dropped\n", at.Round(time.Second),
			mib(float64(s.rss)), s.cpu, s.windows, sumValues(s.dropped))
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	p := pa
	pa = nil
	if res.life, err = p.detach(); err != nil {
		return nil, 0, err
	}
	return n, took, nil
}

// sampleServe reads the agent's /proc/PID/stat and its /metrics. A
// /metrics that does not answer leaves metrics false; one that answers
// something unreadable is an error.
func sampleServe(pid int, url string, at time.Duration) (soakSample, error) {
	s := soakSample{at: at}
	data, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return s, fmt.Errorf("snag serve: %w", err)
	}
	ps, err := parseProcStat(data)
	if err != nil {
		return s, fmt.Errorf("snag serve: %w", err)
	}
	s.rss = ps.rssPages * int64(os.Getpagesize())
	s.cpu = time.Duration(ps.cpuTicks) * time.Second / userHZ
	body, err := getMetrics(url)
	if err != nil {
		return s, nil
	}
	samples, err := parsePromText(body)
	if err != nil {
		return s, fmt.Errorf("snag serve %s: %w", url, err)
	}
	var found [3]bool
	s.mCPU, found[0] = promSum(samples, "snag_cpu_seconds_total")
	s.mPeakRSS, found[1] = promSum(samples, "snag_peak_rss_bytes")
	s.windows, found[2] = promSum(samples, "snag_windows_total")
	if slices.Contains(found[:], false) {
		return s, fmt.Errorf("snag serve %s lacks snag_cpu_seconds_total, snag_peak_rss_bytes or snag_windows_total", url)
	}
	s.events, _ = promSum(samples, "snag_events_total")
	s.traced, _ = promSum(samples, "snag_traced_processes")
	s.dropped = promBy(samples, "snag_dropped_events_total", "cause")
	s.metrics = true
	return s, nil
}

func getMetrics(url string) ([]byte, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// freeLoopbackAddr finds a port nobody listens on, for serve's --listen.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port for snag serve: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func sumValues(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// soakSummary is the figures the soak report judges.
type soakSummary struct {
	cpu, mCPU                 float64 // cores, over the traced part
	firstRSS, lastRSS, maxRSS float64
	slopePerHour              float64            // bytes/hour over the second half
	peakRSS                   float64            // the kernel's, over the agent's life
	dropped                   map[string]float64 // by cause
	droppedLater              float64            // after the first sample's windows
	windows, wantWindows      float64
	events, traced            float64
}

func summarize(r *soakResult) soakSummary {
	s := soakSummary{cpu: math.NaN(), mCPU: math.NaN(), firstRSS: math.NaN(), lastRSS: math.NaN(),
		maxRSS: math.NaN(), slopePerHour: math.NaN(), peakRSS: math.NaN(),
		wantWindows: math.Floor(r.duration.Seconds() / soakInterval.Seconds())}
	if r.life.maxRSS > 0 {
		s.peakRSS = float64(r.life.maxRSS)
	}
	if len(r.samples) == 0 {
		return s
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	secs := (last.at - r.base.at).Seconds()
	s.cpu = (last.cpu - r.base.cpu).Seconds() / secs
	// snag_cpu_seconds_total moves at the end of a window only: its rate
	// is over whole windows, from the first one seen to the last.
	for _, x := range r.samples {
		if dw := last.windows - x.windows; x.windows >= 1 && dw >= 1 {
			s.mCPU = (last.mCPU - x.mCPU) / (dw * soakInterval.Seconds())
			break
		}
	}
	s.firstRSS, s.lastRSS = float64(first.rss), float64(last.rss)
	var xs, ys []float64
	for _, x := range r.samples {
		s.maxRSS = math.Max(nanZero(s.maxRSS), float64(x.rss))
		s.peakRSS = math.Max(nanZero(s.peakRSS), x.mPeakRSS)
	}
	half := r.samples[len(r.samples)/2:]
	for _, x := range half {
		xs = append(xs, x.at.Hours())
		ys = append(ys, float64(x.rss))
	}
	s.slopePerHour = slope(xs, ys)
	s.dropped = make(map[string]float64)
	for cause, v := range last.dropped {
		if d := v - r.base.dropped[cause]; d != 0 {
			s.dropped[cause] = d
		}
	}
	s.droppedLater = sumValues(last.dropped) - sumValues(first.dropped)
	s.windows = last.windows - r.base.windows
	s.events = last.events - r.base.events
	s.traced = last.traced
	return s
}

func nanZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// rssHeadroomOK says whether, growing at slope bytes an hour from last,
// the agent stays under targetSoakRSS for soakHorizon.
func rssHeadroomOK(last, slopePerHour float64) bool {
	return last+math.Max(slopePerHour, 0)*soakHorizon.Hours() <= targetSoakRSS
}
