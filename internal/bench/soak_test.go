package bench

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParsePromText(t *testing.T) {
	text := `# HELP snag_cpu_seconds_total snag's own CPU.
# TYPE snag_cpu_seconds_total counter
snag_cpu_seconds_total 12.5
snag_dropped_events_total{cause="ring_buffer"} 3
snag_dropped_events_total{cause="backlog"} 4 1700000000000
snag_syscalls_total{comm="a \"b\", c\\d",syscall="read",class="file-io"} 7

snag_peak_rss_bytes 3.3554432e+07
go_gc_duration_seconds{quantile="0.5"} NaN
`
	got, err := parsePromText([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("got %d samples, want 6: %+v", len(got), got)
	}
	if v, ok := promSum(got, "snag_cpu_seconds_total"); !ok || v != 12.5 {
		t.Errorf("cpu = %v, %v", v, ok)
	}
	if v, ok := promSum(got, "snag_peak_rss_bytes"); !ok || v != 32<<20 {
		t.Errorf("peak rss = %v, %v", v, ok)
	}
	if _, ok := promSum(got, "snag_windows_total"); ok {
		t.Error("found a metric that is not there")
	}
	by := promBy(got, "snag_dropped_events_total", "cause")
	if len(by) != 2 || by["ring_buffer"] != 3 || by["backlog"] != 4 {
		t.Errorf("dropped by cause = %v", by)
	}
	if c := got[3].labels["comm"]; c != `a "b", c\d` || got[3].labels["class"] != "file-io" || got[3].value != 7 {
		t.Errorf("escaped labels = %q, %v", c, got[3])
	}
	if !math.IsNaN(got[5].value) {
		t.Errorf("NaN read as %v", got[5].value)
	}

	for _, bad := range []string{
		"snag_windows_total",
		"snag_windows_total lots",
		`snag_x{cause="a} 1`,
		`snag_x{cause=a} 1`,
		`snag_x{cause="a" x="b"} 1`,
		"snag_x 1 2 3",
	} {
		if _, err := parsePromText([]byte(bad + "\n")); err == nil {
			t.Errorf("parsePromText(%q): no error", bad)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// The name may hold spaces and parentheses.
	line := "4242 (snag (serve) x) S 1 4242 4242 0 -1 4194560 9000 0 0 0 250 75 0 0 20 0 9 0 12345 1234567890 6400 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	got, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if got.cpuTicks != 325 || got.rssPages != 6400 {
		t.Errorf("parseProcStat = %+v, want 325 ticks, 6400 pages", got)
	}
	for _, bad := range []string{"", "4242 snag S 1", "4242 (snag) S 1 2 3", strings.Replace(line, " 250 ", " x ", 1)} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
}

func TestSlope(t *testing.T) {
	for _, tc := range []struct {
		x, y []float64
		want float64
	}{
		{[]float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}, 2},
		{[]float64{0, 1, 2, 3}, []float64{5, 5, 5, 5}, 0},
		{[]float64{0, 1, 2, 3}, []float64{0, 1, 0, 1}, 1.0 / 6},
		// A spike moves a least-squares fit (to 1.2 here), not the median.
		{[]float64{0, 1, 2, 3, 4}, []float64{5, 5, 5, 5, 11}, 0},
		{[]float64{1}, []float64{1}, math.NaN()},
		{[]float64{2, 2}, []float64{1, 3}, math.NaN()},
	} {
		got := slope(tc.x, tc.y)
		if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-9) {
			t.Errorf("slope(%v, %v) = %v, want %v", tc.x, tc.y, got, tc.want)
		}
	}
}

func TestSoakSelector(t *testing.T) {
	re := regexp.MustCompile(soakSelector("soak-77"))
	for _, tc := range []struct {
		cmdline string
		want    bool
	}{
		{"/x/bin/snagbench " + WorkerArg + " mtmix soak-77", true},
		{"/x/bin/snagbench " + WorkerArg + " blip soak-77", true},
		{"/x/bin/snagbench " + WorkerArg + " mtmix soak-771", false},
		{"/x/bin/snagbench " + WorkerArg + " mtmix", false},
		{"/usr/bin/redis-server 127.0.0.1:16379", true},
		{"redis-server 127.0.0.1:16379", true},
		{"redis-server 127.0.0.1:6379", false},
		{"/usr/bin/redis-benchmark -h 127.0.0.1 -p 16379 -t get,set", true},
		{"/usr/bin/snag serve --cmdline redis-server 127.0.0.1:16379", false},
		{"redis-benchmark -h 127.0.0.1 -p 6379 -t get,set", false},
	} {
		if got := re.MatchString(tc.cmdline); got != tc.want {
			t.Errorf("selector on %q = %v, want %v", tc.cmdline, got, tc.want)
		}
	}
}

// soakFixture is a 4-minute soak whose agent grows 1 MiB a window in the
// second half.
func soakFixture() *soakResult {
	r := &soakResult{
		duration: 4 * time.Minute, procs: 50, selector: "x",
		base: soakSample{cpu: time.Second, mCPU: 1, windows: 0, dropped: map[string]float64{"backlog": 2}},
		life: usage{maxRSS: 40 << 20, cpu: 3 * time.Second},
		rates: []soakRate{
			{kind: soakKind{name: "mtmix", unit: "ops/s"}, procs: 2, untraced: 1000, traced: 900},
			{kind: soakKind{name: "redis", unit: "req/s"}, procs: 2, skipped: "left out"},
		},
		loadBefore: "1.00", loadAfter: "2.00",
	}
	for i := 1; i <= 16; i++ {
		rss := int64(30 << 20)
		if i > 8 {
			rss += int64(i-8) << 20
		}
		r.samples = append(r.samples, soakSample{
			at: time.Duration(i) * soakInterval, rss: rss,
			cpu:  time.Second + time.Duration(i)*soakInterval/200, // 0.5%
			mCPU: 1 + float64(i)*soakInterval.Seconds()/200, mPeakRSS: float64(rss),
			windows: float64(i), dropped: map[string]float64{"backlog": 2, "ring_buffer": float64(i / 16)},
		})
	}
	return r
}

func TestSummarize(t *testing.T) {
	s := summarize(soakFixture())
	near := func(name string, got, want float64) {
		if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("cpu", s.cpu, 0.005)
	near("metric cpu", s.mCPU, 0.005)
	near("first RSS", s.firstRSS, 30<<20)
	near("last RSS", s.lastRSS, 38<<20)
	near("max RSS", s.maxRSS, 38<<20)
	near("peak RSS", s.peakRSS, 40<<20)
	// 1 MiB every 15 s is 240 MiB an hour.
	near("slope", s.slopePerHour, 240<<20)
	near("windows", s.windows, 16)
	if s.droppedLater != 1 {
		t.Errorf("dropped after the first window = %v, want 1", s.droppedLater)
	}
	if len(s.dropped) != 1 || s.dropped["ring_buffer"] != 1 {
		t.Errorf("dropped = %v, want only ring_buffer 1 (backlog's 2 came before)", s.dropped)
	}
	if rssHeadroomOK(s.lastRSS, s.slopePerHour) {
		t.Error("240 MiB/h passed the growth target")
	}
	if !rssHeadroomOK(50<<20, 1<<20) || rssHeadroomOK(90<<20, 1<<20) || !rssHeadroomOK(90<<20, -5<<20) {
		t.Error("rssHeadroomOK misjudges")
	}
	if e := summarize(&soakResult{duration: time.Minute}); !math.IsNaN(e.cpu) || !math.IsNaN(e.slopePerHour) {
		t.Errorf("no samples: %+v", e)
	}
}

func TestWriteSoakReport(t *testing.T) {
	var b strings.Builder
	if err := writeSoakReport(&b, soakFixture()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`mtmix\s+2\s+1k ops/s\s+900 ops/s\s+90\.0%`),
		regexp.MustCompile(`redis\s+2\s+left out`),
		regexp.MustCompile(`serve CPU ≤ 1% of a core \(/proc/PID/stat\)\s+0\.5%\s+PASS`),
		regexp.MustCompile(`serve peak RSS ≤ 100 MiB\s+40\.0 MiB\s+PASS`),
		regexp.MustCompile(`serve RSS stays ≤ 100 MiB for 24h0m0s at its slope\s+\+240\.00 MiB/h\s+MISS`),
		regexp.MustCompile(`serve dropped events after the first window = 0\s+1\s+MISS`),
		regexp.MustCompile(`serve windows ≥ 15\s+16\s+PASS`),
		regexp.MustCompile(`first 30\.0 MiB, last 38\.0 MiB, max 38\.0 MiB`),
		regexp.MustCompile(`dropped 1 events, first window included, by cause: ring_buffer 1`),
	} {
		if !want.MatchString(out) {
			t.Errorf("report lacks %s:\n%s", want, out)
		}
	}
}
