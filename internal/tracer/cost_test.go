//go:build linux

package tracer

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/testutil"
	"github.com/snagtrace/snag/report"
)

// Without --bpf-stats the statistics run in samples, and the cost is
// scaled from the syscalls they saw; with it, every run is measured.
func TestCostSampledRunStats(t *testing.T) {
	testutil.RequireBPF(t)
	for _, always := range []bool{false, true} {
		tr, _ := attach(t, testutil.Workload{Getppid: 20000}, Config{Threshold: 100 * time.Microsecond, BPFStats: always})
		c := tr.Cost
		if len(c.Programs) == 0 {
			t.Fatalf("bpf-stats %v: no programs measured: %s", always, c.StatsError)
		}
		if always && c.StatsSampled {
			t.Errorf("--bpf-stats: the statistics were sampled")
		}
		if !always && c.StatsSampled && (c.SampledSyscalls == 0 || c.SampledSyscalls > c.Syscalls) {
			t.Errorf("sampled %d of %d syscalls", c.SampledSyscalls, c.Syscalls)
		}
		if per := c.PerSyscall(); per <= 0 || per > 100*time.Microsecond {
			t.Errorf("bpf-stats %v: %v per syscall over %d syscalls (sampled %v: %d)", always, per, c.Syscalls, c.StatsSampled, c.SampledSyscalls)
		}
		t.Logf("bpf-stats %v: %v per syscall, sampled %v (%d of %d syscalls)", always, c.PerSyscall(), c.StatsSampled, c.SampledSyscalls, c.Syscalls)
	}
}

// A trace states what it cost, and the numbers are plausible: the
// programs ran, their time per syscall is far below what a sleep of 1 ms
// measured, and snag's own CPU and memory are there.
func TestCostIsMeasured(t *testing.T) {
	testutil.RequireBPF(t)
	w := testutil.Workload{Getppid: 50000, Sleeps: 20, SleepFor: time.Millisecond}
	tr, run := attach(t, w, Config{Threshold: 100 * time.Microsecond, BPFStats: true})
	c := tr.Cost
	if !c.Known {
		t.Fatal("no cost for a live trace")
	}
	if c.StatsError != "" {
		t.Fatalf("no BPF run time: %s", c.StatsError)
	}
	names := map[string]bool{}
	for _, p := range c.Programs {
		names[p.Name] = true
		if p.Syscall && (p.Runs < uint64(w.Getppid) || p.RunTime <= 0) {
			t.Errorf("program %s: %d runs in %v, want at least the %d getppid calls", p.Name, p.Runs, p.RunTime, w.Getppid)
		}
	}
	if !names["sys_enter"] || !names["sys_exit"] {
		t.Errorf("programs %+v, want sys_enter and sys_exit", c.Programs)
	}
	if c.Syscalls < uint64(w.Getppid+w.Sleeps) {
		t.Errorf("%d syscalls traced, want at least the workload's %d", c.Syscalls, w.Getppid+w.Sleeps)
	}
	sleep := stat(tr, 0, run.TID, "nanosleep")
	if sleep.count != uint64(w.Sleeps) {
		t.Fatalf("%d sleeps, want %d", sleep.count, w.Sleeps)
	}
	per := c.PerSyscall()
	if per <= 0 || per >= sleep.p50 || per >= 50*time.Microsecond {
		t.Errorf("%v per syscall, want more than 0 and less than a sleep's %v and 50µs", per, sleep.p50)
	}
	if c.Events < uint64(w.Sleeps) {
		t.Errorf("%d events, want at least the %d slow sleeps", c.Events, w.Sleeps)
	}
	if c.SnagCPU <= 0 || c.SnagCPU > tr.Duration*time.Duration(4) {
		t.Errorf("snag's CPU %v over a %v trace", c.SnagCPU, tr.Duration)
	}
	if c.SnagPeakRSS < 1<<20 {
		t.Errorf("snag's peak RSS %d bytes", c.SnagPeakRSS)
	}
	t.Logf("%v per syscall over %d syscalls; programs %+v; snag CPU %v, peak RSS %d", per, c.Syscalls, c.Programs, c.SnagCPU, c.SnagPeakRSS)

	var table, js bytes.Buffer
	if err := report.Table(&table, tr, nil, report.TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "snag added ") {
		t.Errorf("table report without its cost:\n%s", table.String())
	}
	if err := report.JSON(&js, tr, nil); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cost *struct {
			NSPerSyscall float64 `json:"ns_per_syscall"`
		} `json:"cost"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Cost == nil || doc.Cost.NSPerSyscall <= 0 {
		t.Errorf("JSON cost %+v", doc.Cost)
	}
	for _, l := range strings.Split(table.String(), "\n") {
		if strings.Contains(l, "snag added") || strings.Contains(l, "snag itself") {
			t.Log(strings.TrimSpace(l))
		}
	}
}
