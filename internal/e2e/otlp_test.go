//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/otlpprof"
	snagreport "github.com/snagtrace/snag/report"
)

// Profiles exported over OTLP/HTTP to a real OpenTelemetry Collector
// (internal/e2e/otelcol, its own module: receiver/otlpreceiver v0.165.0 and
// an exporter that writes what it receives as OTLP JSON lines), read back
// from the collector's file.

var collectorBuild struct {
	sync.Once
	bin string
	err error
}

// collectorBinary builds the test collector once and keeps it in the user's
// cache directory under a hash of its sources and the Go version, so later
// runs skip even the link. A cold build compiles some 400 packages (3 min of
// CPU; 2 to 9 min on two busy cores); with Go's build cache warm it takes 5
// to 15 s.
func collectorBinary(t *testing.T) string {
	t.Helper()
	collectorBuild.Do(func() {
		collectorBuild.bin, collectorBuild.err = buildCollector()
	})
	if collectorBuild.err != nil {
		t.Fatal(collectorBuild.err)
	}
	return collectorBuild.bin
}

func buildCollector() (string, error) {
	src := filepath.Join(repoRoot(), "internal", "e2e", "otelcol")
	h := sha256.New()
	io.WriteString(h, runtime.Version())
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", fmt.Errorf("hash the test collector's sources: %w", err)
		}
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "snag-test", fmt.Sprintf("otelcol-%x", h.Sum(nil)[:8]))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	// Built under a temporary name and renamed, so an interrupted build
	// never leaves a broken binary under the cached name.
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the test collector in %s: %v\n%s", src, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("cache the test collector: %w", err)
	}
	return bin, nil
}

// startCollector runs the test collector on 127.0.0.1 and returns its OTLP
// endpoint and the file it writes received profiles to.
func startCollector(t *testing.T) (endpoint, received string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and starts an OpenTelemetry Collector")
	}
	bin := collectorBinary(t)
	dir := t.TempDir()
	addr := freePort(t)
	received = filepath.Join(dir, "profiles.jsonl")
	config := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
exporters:
  profilefile:
    path: %s
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    profiles:
      receivers: [otlp]
      exporters: [profilefile]
`, addr, received)
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config", config, "--feature-gates=service.profilesSupport")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("collector log:\n%s", logs.String())
		}
	})
	// The receiver listens before the pipeline is ready; the log says when
	// it is.
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case err := <-exited:
			t.Fatalf("collector exited: %v\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if strings.Contains(logs.String(), "Everything is ready") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not ready after 30s:\n%s", logs.String())
		}
	}
	return "http://" + addr, received
}

// receivedProfiles waits for the collector's file to hold n batches and
// decodes them.
func receivedProfiles(t *testing.T, path string, n int) []pprofile.Profiles {
	t.Helper()
	var lines [][]byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(path)
		// Only whole lines: the last may still be being written.
		lines = bytes.Split(b, []byte("\n"))
		lines = lines[:len(lines)-1]
		if len(lines) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector wrote %d batches, want %d", len(lines), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var out []pprofile.Profiles
	for _, l := range lines {
		p, err := (&pprofile.JSONUnmarshaler{}).UnmarshalProfiles(l)
		if err != nil {
			t.Fatalf("decode the collector's OTLP JSON: %v", err)
		}
		out = append(out, p)
	}
	return out
}

// otlpSample is one received sample: its sample type, value, frames leaf
// first as "function (mapping file)" or, without a mapping, "function", and
// its attributes.
type otlpSample struct {
	sampleType string
	value      int64
	frames     []string
	attrs      map[string]string
}

func otlpSamples(t *testing.T, ps pprofile.Profiles) ([]otlpSample, map[string]string) {
	t.Helper()
	d := ps.Dictionary()
	str := func(i int32) string { return d.StringTable().At(int(i)) }
	res := map[string]string{}
	var out []otlpSample
	for _, rp := range ps.ResourceProfiles().All() {
		for k, v := range rp.Resource().Attributes().All() {
			res[k] = v.AsString()
		}
		for _, sp := range rp.ScopeProfiles().All() {
			for _, p := range sp.Profiles().All() {
				st := str(p.SampleType().TypeStrindex()) + "/" + str(p.SampleType().UnitStrindex())
				for _, s := range p.Samples().All() {
					o := otlpSample{sampleType: st, value: s.Values().At(0), attrs: map[string]string{}}
					locs, err := pprofile.FromLocationIndices(d.LocationTable(), d.StackTable().At(int(s.StackIndex())))
					if err != nil {
						t.Fatal(err)
					}
					for _, loc := range locs.All() {
						var in string
						if mi := loc.MappingIndex(); mi != 0 {
							in = " (" + filepath.Base(str(d.MappingTable().At(int(mi)).FilenameStrindex())) + ")"
						}
						for _, ln := range loc.Lines().All() {
							o.frames = append(o.frames, str(d.FunctionTable().At(int(ln.FunctionIndex())).NameStrindex())+in)
						}
					}
					attrs, err := pprofile.FromAttributeIndices(d.AttributeTable(), s, d)
					if err != nil {
						t.Fatal(err)
					}
					for k, v := range attrs.All() {
						o.attrs[k] = v.AsString()
					}
					out = append(out, o)
				}
			}
		}
	}
	return out, res
}

// pprofTotals sums a pprof profile's values per sample type.
func pprofTotals(p *profile.Profile) map[string]int64 {
	tot := map[string]int64{}
	for _, s := range p.Sample {
		for i, st := range p.SampleType {
			tot[st.Type+"/"+st.Unit] += s.Value[i]
		}
	}
	return tot
}

// checkReceived asserts the collector got p whole: the same totals per
// sample type, a blocked poll under libmariadb, and the resource.
func checkReceived(t *testing.T, got []pprofile.Profiles, p *profile.Profile, res otlpprof.Resource) {
	t.Helper()
	tot := map[string]int64{}
	var maria []otlpSample
	for _, ps := range got {
		samples, attrs := otlpSamples(t, ps)
		if attrs["process.pid"] != strconv.Itoa(res.PID) || attrs["host.name"] != res.HostName || attrs["service.name"] != res.ServiceName {
			t.Errorf("resource attributes %v, want pid %d host %s service %s", attrs, res.PID, res.HostName, res.ServiceName)
		}
		for _, s := range samples {
			tot[s.sampleType] += s.value
			if s.sampleType == "blocked/nanoseconds" && strings.Contains(strings.Join(s.frames, "\n"), "(libmariadb.so.3)") {
				maria = append(maria, s)
			}
		}
	}
	if want := pprofTotals(p); fmt.Sprint(tot) != fmt.Sprint(want) {
		t.Errorf("collector totals %v, pprof totals %v", tot, want)
	}
	if len(maria) == 0 {
		t.Fatal("no blocked sample with a libmariadb frame reached the collector")
	}
	s := maria[0]
	if s.frames[0] != "syscall:poll" || s.attrs["syscall"] != "poll" || s.attrs["process.pid"] != strconv.Itoa(res.PID) {
		t.Errorf("libmariadb sample's leaf %q, attributes %v: want the poll of pid %d", s.frames[0], s.attrs, res.PID)
	}
	stack := strings.Join(s.frames, "\n")
	i, j := strings.Index(stack, "(libmariadb.so.3)"), strings.Index(stack, "(_mysql.cpython-311-x86_64-linux-gnu.so)")
	if j < i {
		t.Errorf("libmariadb must be nearer the leaf than _mysql:\n%s", stack)
	}
}

// TestOTLPCollectorReceivesReportProfile exports a profile that report
// builds from a trace of a gevent worker stalled in libmariadb.
func TestOTLPCollectorReceivesReportProfile(t *testing.T) {
	endpoint, received := startCollector(t)
	const (
		libmariadb = "/usr/lib/x86_64-linux-gnu/libmariadb.so.3"
		ext        = "/usr/lib/python3/dist-packages/MySQLdb/_mysql.cpython-311-x86_64-linux-gnu.so"
	)
	stack := []model.Frame{
		{Addr: 0x7f3a1c51ab2f, Function: "poll", Module: "libc.so.6", Path: "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		{Addr: 0x7f3a1b2f4d11, Function: "pvio_socket_wait_io_or_timeout", Module: "libmariadb.so.3", Path: libmariadb},
		{Addr: 0x7f3a1b2f50a2, Function: "pvio_socket_read", Module: "libmariadb.so.3", Path: libmariadb},
		{Addr: 0x7f3a1b2e8a93, Function: "ma_net_safe_read", Module: "libmariadb.so.3", Path: libmariadb},
		{Addr: 0x7f3a1b6a3e55, Function: "_mysql_ConnectionObject_query", Module: "_mysql.cpython-311-x86_64-linux-gnu.so", Path: ext},
		{Function: "BaseCursor.execute", Module: "cursors.py", Path: "/usr/lib/python3/dist-packages/MySQLdb/cursors.py", Kind: model.FrameInterpreter, Line: 179},
	}
	tr := &model.Trace{
		Source:    "ebpf",
		Target:    model.Target{PID: 4242, Comm: "python3"},
		Processes: []model.Process{{PID: 4242, PPID: 1, Comm: "python3"}},
		Threads:   []model.Thread{{PID: 4242, TID: 4242, Name: "python3"}},
		Start:     time.Now().Add(-15 * time.Second),
		Duration:  15 * time.Second,
		Threshold: time.Millisecond,
	}
	for i := range 30 {
		tr.Events = append(tr.Events, model.Event{Kind: model.EvSyscall, PID: 4242, TID: 4242, Syscall: "poll", Nr: -1,
			Duration: 50*time.Millisecond + time.Duration(i)*time.Microsecond, Stack: stack})
	}
	var buf bytes.Buffer
	if err := snagreport.Pprof(&buf, tr, nil); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}

	e, err := otlpprof.NewExporter(endpoint, otlpprof.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := otlpprof.Resource{ServiceName: "shop", HostName: "web-1", PID: 4242, Comm: "python3"}
	if err := e.Export(context.Background(), p, res); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkExported(t, e)
	checkReceived(t, receivedProfiles(t, received, 1), p, res)
}

// checkExported asserts the exporter counted one window sent and nothing
// lost.
func checkExported(t *testing.T, e *otlpprof.Exporter) otlpprof.Stats {
	t.Helper()
	s := e.Stats()
	if s != (otlpprof.Stats{Exported: 1, Bytes: s.Bytes}) || s.Bytes == 0 {
		t.Errorf("exporter stats %+v, want one window exported", s)
	}
	return s
}

// TestServeOTLP has snag serve trace the gevent + MySQLdb example and push
// every window's profile to the collector: the windows arrive with the
// worker's poll under libmariadb, described as that process.
func TestServeOTLP(t *testing.T) {
	requireGevent(t)
	endpoint, received := startCollector(t)
	pid := geventApp(t, "mysqldb")
	sv := startServe(t, "--pid", strconv.Itoa(pid), "--interval", "1s", "--listen", "127.0.0.1:0", "--otlp-endpoint", endpoint)
	var got []pprofile.Profiles
	for deadline := time.Now().Add(20 * time.Second); ; {
		sv.checkAlive(t)
		b, _ := os.ReadFile(received)
		if n := bytes.Count(b, []byte("\n")); n >= 2 {
			got = receivedProfiles(t, received, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector received %d windows in 20 s, want 2\nsnag serve's stderr: %s", bytes.Count(b, []byte("\n")), sv.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	sv.stop(t)
	var maria []otlpSample
	for _, ps := range got {
		samples, attrs := otlpSamples(t, ps)
		if attrs["process.pid"] != strconv.Itoa(pid) || attrs["process.executable.name"] == "" {
			t.Errorf("resource attributes %v, want the traced process, pid %d", attrs, pid)
		}
		for _, s := range samples {
			if s.sampleType == "blocked/nanoseconds" && strings.Contains(strings.Join(s.frames, "\n"), "(libmariadb.so.3)") {
				maria = append(maria, s)
			}
		}
	}
	if len(maria) == 0 {
		t.Fatalf("no blocked sample with a libmariadb frame in %d windows", len(got))
	}
	if s := maria[0]; s.frames[0] != "syscall:poll" || s.attrs["process.pid"] != strconv.Itoa(pid) {
		t.Errorf("libmariadb sample's leaf %q, attributes %v: want the poll of pid %d", s.frames[0], s.attrs, pid)
	}
	t.Logf("%d windows received, %d blocked samples under libmariadb", len(got), len(maria))
}
