package otlpprof

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
)

func TestProfilesURL(t *testing.T) {
	tests := []struct {
		endpoint, want, err string
	}{
		{"http://collector:4318", "http://collector:4318/v1development/profiles", ""},
		{"http://collector:4318/", "http://collector:4318/v1development/profiles", ""},
		{"https://otel.example:443/base", "https://otel.example:443/base/v1development/profiles", ""},
		{"collector:4318", "", "want http://host:port"},
		{"grpc://collector:4317", "", "want http://host:port"},
		{"http://", "", "want http://host:port"},
		{"http://c:4318/?x=1", "", "query or fragment"},
		{"http://c:4318\x7f", "", "invalid control character"},
	}
	for _, tt := range tests {
		got, err := profilesURL(tt.endpoint)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.endpoint, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %q, %v; want %q", tt.endpoint, got, err, tt.want)
		}
	}
}

// TestVersionHeader keeps the header this package sends in step with the
// pdata it encodes with.
func TestVersionHeader(t *testing.T) {
	if versionHeader != pprofileotlp.DevelopmentVersionHeader || version != pprofileotlp.DevelopmentVersion {
		t.Errorf("sends %s: %s, pdata speaks %s: %s", versionHeader, version, pprofileotlp.DevelopmentVersionHeader, pprofileotlp.DevelopmentVersion)
	}
}

// collector is an OTLP/HTTP profiles endpoint that checks each request as
// the collector's receiver does, decodes it, then answers with the status
// the test gives for that attempt.
type collector struct {
	t        *testing.T
	mu       sync.Mutex
	requests []pprofileotlp.ExportRequest
	attempts atomic.Int32
	answer   func(attempt int) (status int, body []byte)
	header   http.Header   // added to every answer
	block    chan struct{} // when set, requests wait on it
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(c.attempts.Add(1))
	if c.block != nil {
		<-c.block
	}
	if r.Method != http.MethodPost || r.URL.Path != ProfilesPath {
		c.t.Errorf("%s %s, want POST %s", r.Method, r.URL.Path, ProfilesPath)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		c.t.Errorf("content type %q", ct)
	}
	if err := pprofileotlp.ValidateDevelopmentVersion(r.Header.Values(pprofileotlp.DevelopmentVersionHeader)); err != nil {
		c.t.Error(err)
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			c.t.Errorf("gzip: %v", err)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		c.t.Error(err)
		return
	}
	req := pprofileotlp.NewExportRequest()
	if err := req.UnmarshalProto(raw); err != nil {
		c.t.Errorf("body does not unmarshal as an export request: %v", err)
	}
	c.mu.Lock()
	c.requests = append(c.requests, req)
	c.mu.Unlock()
	status, msg := http.StatusOK, []byte(nil)
	if c.answer != nil {
		status, msg = c.answer(n)
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	for k, v := range c.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	w.Write(msg)
}

func newCollector(t *testing.T, answer func(int) (int, []byte)) (*collector, *httptest.Server) {
	c := &collector{t: t, answer: answer}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv
}

func fastOptions() Options {
	return Options{Timeout: 2 * time.Second, Attempts: 3, Backoff: time.Millisecond}
}

func TestExportSendsDecodableRequest(t *testing.T) {
	c, srv := newCollector(t, nil)
	e, err := NewExporter(srv.URL, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if err := e.Export(context.Background(), blockedProfile(), Resource{PID: 4242, Comm: "python3"}); err != nil {
		t.Fatal(err)
	}
	if len(c.requests) != 1 {
		t.Fatalf("%d requests", len(c.requests))
	}
	got, res := flatten(t, c.requests[0].Profiles())
	if len(got["blocked/nanoseconds"]) != 1 || got["blocked/nanoseconds"][0].value != 2_000_000_000 {
		t.Errorf("blocked samples %v", got["blocked/nanoseconds"])
	}
	if !strings.Contains(strings.Join(got["syscalls/count"][0].frames, "\n"), "libmariadb.so.3") {
		t.Errorf("frames %v lack libmariadb", got["syscalls/count"][0].frames)
	}
	if v, _ := res.Get("process.pid"); v.Int() != 4242 {
		t.Errorf("resource %v", res.AsRaw())
	}
	if s := e.Stats(); s.Bytes == 0 || s != (Stats{Exported: 1, Bytes: s.Bytes}) {
		t.Errorf("stats %+v", s)
	}
}

// TestExportRetryAfter: a collector that sheds load says how long to wait,
// and the exporter waits that long rather than its own shorter backoff.
func TestExportRetryAfter(t *testing.T) {
	c, srv := newCollector(t, func(n int) (int, []byte) {
		if n == 1 {
			return http.StatusTooManyRequests, nil
		}
		return http.StatusOK, nil
	})
	c.header = http.Header{"Retry-After": {"1"}}
	e, err := NewExporter(srv.URL, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	start := time.Now()
	if err := e.Export(context.Background(), blockedProfile(), Resource{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, want the 1s the collector asked for", d)
	}
	if s := e.Stats(); s.Exported != 1 || s.Retries != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"":                              0,
		"2":                             2 * time.Second,
		"0":                             0,
		"-5":                            0,
		"3600":                          maxRetryAfter,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0,
	} {
		if got := retryAfter(http.Header{"Retry-After": {v}}); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

func partialSuccessBody(t *testing.T, rejected int64, msg string) []byte {
	resp := pprofileotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedProfiles(rejected)
	resp.PartialSuccess().SetErrorMessage(msg)
	b, err := resp.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExportOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(attempt int) (int, []byte)
		wantErr  string
		attempts int32
		stats    Stats
	}{
		{
			name:     "accepted",
			answer:   func(int) (int, []byte) { return http.StatusOK, nil },
			attempts: 1,
			stats:    Stats{Exported: 1},
		},
		{
			name:     "partial success is counted",
			answer:   func(int) (int, []byte) { return http.StatusOK, partialSuccessBody(t, 2, "no samples") },
			attempts: 1,
			stats:    Stats{Exported: 1, Rejected: 2},
		},
		{
			name: "unavailable, then accepted",
			answer: func(n int) (int, []byte) {
				if n < 3 {
					return http.StatusServiceUnavailable, nil
				}
				return http.StatusOK, nil
			},
			attempts: 3,
			stats:    Stats{Exported: 1, Retries: 2},
		},
		{
			name:     "unavailable on every attempt",
			answer:   func(int) (int, []byte) { return http.StatusServiceUnavailable, []byte("busy") },
			wantErr:  `attempt 3 of 3): collector answered 503 Service Unavailable: "busy"`,
			attempts: 3,
			stats:    Stats{Failed: 1, Retries: 2},
		},
		{
			name: "bad request is not retried, and its status message is shown",
			answer: func(int) (int, []byte) {
				// google.rpc.Status{code: 3, message: "invalid version"}
				return http.StatusBadRequest, append([]byte{0x08, 0x03, 0x12, 15}, "invalid version"...)
			},
			wantErr:  "attempt 1 of 3): collector answered 400 Bad Request: invalid version",
			attempts: 1,
			stats:    Stats{Failed: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := newCollector(t, tt.answer)
			e, err := NewExporter(srv.URL, fastOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close(context.Background())
			err = e.Export(context.Background(), blockedProfile(), Resource{})
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if n := c.attempts.Load(); n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
			s := e.Stats()
			if (s.Exported > 0) != (s.Bytes > 0) {
				t.Errorf("%d exported in %d bytes", s.Exported, s.Bytes)
			}
			s.Bytes = 0
			if s != tt.stats {
				t.Errorf("stats %+v, want %+v", s, tt.stats)
			}
		})
	}
}

func TestExportUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	e, err := NewExporter(url, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	err = e.Export(context.Background(), blockedProfile(), Resource{})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err %v, want connection refused", err)
	}
	if s := e.Stats(); s.Failed != 1 || s.Retries != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestExportTimeout(t *testing.T) {
	c, srv := newCollector(t, nil)
	c.block = make(chan struct{})
	defer close(c.block)
	opt := fastOptions()
	opt.Timeout = 50 * time.Millisecond
	opt.Attempts = 2
	e, err := NewExporter(srv.URL, opt)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = e.Export(context.Background(), blockedProfile(), Resource{})
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("err %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("two 50ms attempts took %v", d)
	}
	if s := e.Stats(); s.Failed != 1 || s.Retries != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestPushNeverBlocks holds the collector so that one window is in flight,
// then pushes more than the queue holds: Push returns at once, the oldest
// waiting windows are dropped and counted, and the rest are sent in order
// once the collector answers.
func TestPushNeverBlocks(t *testing.T) {
	c, srv := newCollector(t, nil)
	c.block = make(chan struct{})
	opt := fastOptions()
	opt.Queue = 2
	e, err := NewExporter(srv.URL, opt)
	if err != nil {
		t.Fatal(err)
	}
	push := func(pid int) {
		start := time.Now()
		e.Push(blockedProfile(), Resource{PID: pid})
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("push took %v", d)
		}
	}
	push(1)
	// Wait until window 1 is in flight, so the queue is empty again.
	for deadline := time.Now().Add(5 * time.Second); c.attempts.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("window 1 never sent")
		}
		time.Sleep(time.Millisecond)
	}
	for pid := 2; pid <= 5; pid++ {
		push(pid)
	}
	if s := e.Stats(); s.Dropped != 2 || s.Queued != 2 {
		t.Errorf("stats with the collector held: %+v, want 2 dropped, 2 queued", s)
	}
	close(c.block)
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := e.Stats(); s != (Stats{Exported: 3, Dropped: 2, Bytes: s.Bytes}) || s.Bytes == 0 {
		t.Errorf("stats after close %+v", s)
	}
	var pids []int64
	for _, r := range c.requests {
		v, _ := r.Profiles().ResourceProfiles().At(0).Resource().Attributes().Get("process.pid")
		pids = append(pids, v.Int())
	}
	if len(pids) != 3 || pids[0] != 1 || pids[1] != 4 || pids[2] != 5 {
		t.Errorf("sent windows of pids %v, want 1, 4, 5", pids)
	}
	e.Push(blockedProfile(), Resource{})
	if s := e.Stats(); s.Dropped != 3 {
		t.Errorf("push after close: %d dropped, want 3", s.Dropped)
	}
}

// TestCloseGivesUp: a Close whose context ends stops a send that would
// otherwise retry for long, and counts the windows still queued.
func TestCloseGivesUp(t *testing.T) {
	_, srv := newCollector(t, func(int) (int, []byte) { return http.StatusServiceUnavailable, nil })
	opt := fastOptions()
	opt.Attempts = 100
	opt.Backoff = time.Second
	e, err := NewExporter(srv.URL, opt)
	if err != nil {
		t.Fatal(err)
	}
	e.Push(blockedProfile(), Resource{})
	e.Push(blockedProfile(), Resource{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := e.Close(ctx); err == nil {
		t.Fatal("close returned nil with windows unsent")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("close took %v", d)
	}
	if s := e.Stats(); s.Failed+s.Dropped != 2 || s.Queued != 0 {
		t.Errorf("stats %+v: both windows must be accounted for", s)
	}
}

func TestExportUnconvertible(t *testing.T) {
	c, srv := newCollector(t, nil)
	e, err := NewExporter(srv.URL, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	p := blockedProfile()
	p.Sample[0].Value = nil
	if err := e.Export(context.Background(), p, Resource{}); err == nil {
		t.Fatal("invalid profile exported")
	}
	if c.attempts.Load() != 0 || e.Stats() != (Stats{Unconvertible: 1}) {
		t.Errorf("%d requests, stats %+v", c.attempts.Load(), e.Stats())
	}
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		count int64
		msg   string
		err   bool
	}{
		{"empty", nil, 0, "", false},
		{"partial success", partialSuccessBody(t, 3, "bad stack"), 3, "bad stack", false},
		{"unknown fields skipped", append([]byte{0x18, 0x07}, partialSuccessBody(t, 1, "x")...), 1, "x", false},
		{"truncated", partialSuccessBody(t, 3, "bad stack")[:4], 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := decodeResponse(tt.body)
			if (err != nil) != tt.err || ps.count != tt.count || ps.message != tt.msg {
				t.Errorf("%+v, %v", ps, err)
			}
		})
	}
}
