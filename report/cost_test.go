package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

func costTrace() *model.Trace {
	return &model.Trace{
		Source:   "ebpf",
		Duration: 10 * time.Second,
		Threads: []model.Thread{
			{PID: 7, TID: 7, OnCPU: 4 * time.Second},
			{PID: 7, TID: 8, OnCPU: 2 * time.Second},
		},
		Cost: model.Cost{
			Known: true,
			Programs: []model.ProgramCost{
				{Name: "sys_enter", Syscall: true, RunTime: 100 * time.Millisecond, Runs: 2_100_000},
				{Name: "sys_exit", Syscall: true, RunTime: 90 * time.Millisecond, Runs: 2_400_000},
				{Name: "sched_switch", RunTime: 10 * time.Millisecond, Runs: 400_000},
			},
			Syscalls:    2_000_000,
			Events:      12_345,
			SnagCPU:     60 * time.Millisecond,
			SnagPeakRSS: 35 << 20,
		},
	}
}

func TestCostLines(t *testing.T) {
	got := costLines(costTrace())
	want := []string{
		"snag added ~95ns to each of the 2,000,000 syscalls it traced (3.2% of the traced threads' CPU time)",
		"its BPF programs ran 200ms in all; snag itself used 0.6% of a CPU and 35.0 MiB at its peak; 1,235 events/s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("cost lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Calls of other processes ran the programs too: the time per traced
// call is then a bound, and the report says so.
func TestCostLinesAtMost(t *testing.T) {
	tr := costTrace()
	tr.Cost.Programs[0].Runs = 3_000_000
	got := costLines(tr)
	want := []string{
		"snag added at most ~95ns to each of the 2,000,000 syscalls it traced (3.2% of the traced threads' CPU time)",
		"its BPF programs ran 200ms in all, which includes filtering out 1,000,000 calls of other processes; snag itself used 0.6% of a CPU and 35.0 MiB at its peak; 1,235 events/s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("cost lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCostLinesWithoutStats(t *testing.T) {
	tr := costTrace()
	tr.Cost.Programs = nil
	tr.Cost.StatsError = "enable BPF run-time statistics: invalid argument"
	tr.Threads = nil
	got := costLines(tr)
	want := "snag traced 2,000,000 syscalls; the run time of its BPF programs is unknown (enable BPF run-time statistics: invalid argument)"
	if len(got) != 2 || got[0] != want {
		t.Fatalf("cost lines %q, want first %q", got, want)
	}
	if strings.Contains(got[1], "BPF programs ran") {
		t.Errorf("second line %q names a run time that was not measured", got[1])
	}
	tr.Cost = model.Cost{}
	if got := costLines(tr); got != nil {
		t.Errorf("unknown cost rendered as %q", got)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0:              "0 B",
		1023:           "1023 B",
		1024:           "1.00 KiB",
		1536:           "1.50 KiB",
		1048575:        "1.00 MiB",
		35 << 20:       "35.0 MiB",
		1000 << 20:     "0.98 GiB",
		3 << 40:        "3.00 TiB",
		5000 << 40:     "5000 TiB",
		123456789:      "118 MiB",
		(1 << 30) - 1:  "1.00 GiB",
		999*1024 + 512: "0.98 MiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// Every report that has room for it states the cost; none does for a trace
// whose source did not measure it.
func TestCostInReports(t *testing.T) {
	tr := costTrace()
	var table bytes.Buffer
	if err := Table(&table, tr, nil, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "snag added ~95ns to each of the 2,000,000 syscalls") {
		t.Errorf("table without the cost footer:\n%s", table.String())
	}

	var js bytes.Buffer
	if err := JSON(&js, tr, nil); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cost *jsonCost `json:"cost"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.Cost
	if c == nil {
		t.Fatalf("JSON without a cost object:\n%s", js.String())
	}
	if c.Syscalls != 2_000_000 || c.NSPerSyscall != 95 || c.BPFRunNS != int64(200*time.Millisecond) ||
		c.SyscallBPFRunNS != int64(190*time.Millisecond) || c.BPFRuns != 4_900_000 || c.UntracedCalls != 100_000 ||
		c.TracedCPUNS != int64(6*time.Second) || c.SnagPeakRSSBytes != 35<<20 ||
		c.EventsPerSecond != 1234.5 || len(c.Programs) != 3 || c.Programs[2].Name != "sched_switch" {
		t.Errorf("cost %+v", c)
	}
	if want := 0.19 / 6; c.TracedCPUShare < want-1e-9 || c.TracedCPUShare > want+1e-9 {
		t.Errorf("traced_cpu_share %v, want %v", c.TracedCPUShare, want)
	}

	var page bytes.Buffer
	if err := HTML(&page, tr, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "snag added ~95ns") {
		t.Error("HTML report without the cost")
	}

	tr.Cost = model.Cost{}
	js.Reset()
	table.Reset()
	if err := JSON(&js, tr, nil); err != nil {
		t.Fatal(err)
	}
	if err := Table(&table, tr, nil, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), `"cost"`) || strings.Contains(table.String(), "snag added") {
		t.Error("an unmeasured cost is reported")
	}
}
