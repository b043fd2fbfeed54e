package otlpprof

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"google.golang.org/protobuf/encoding/protowire"
)

// ProfilesPath is where an OTLP/HTTP receiver takes profiles (the
// collector's otlpreceiver, v0.165.0), relative to the endpoint.
const ProfilesPath = "/v1development/profiles"

// The receiver rejects a request whose development version it does not
// speak; saying which one this is makes a mismatch a clear 400 rather than a
// garbled decode.
const (
	versionHeader = "otlp-profiles-development-version"
	version       = "1"
)

// Defaults for Options' zero fields.
const (
	// DefaultTimeout bounds one POST, well under a 15 s window, so a stuck
	// collector delays at most the window being sent.
	DefaultTimeout = 10 * time.Second
	// DefaultAttempts: a collector that restarts or sheds load is back
	// within a few seconds; beyond that the next window is worth more than
	// this one.
	DefaultAttempts = 3
	// DefaultBackoff is the wait before the first retry, doubled after each.
	DefaultBackoff = 500 * time.Millisecond
	// maxRetryAfter caps the wait a collector asks for (Retry-After): a
	// window older than two windows is worth less than the next one.
	maxRetryAfter = 30 * time.Second
	// DefaultQueue windows wait while one is being sent: a minute of 15 s
	// windows rides out a collector restart without holding much memory.
	DefaultQueue = 4
)

// Options tune an Exporter; zero fields take the defaults above.
type Options struct {
	Timeout  time.Duration // per attempt
	Attempts int           // attempts per window, the first included
	Backoff  time.Duration
	Queue    int          // windows waiting to be sent; the oldest is dropped beyond it
	Client   *http.Client // nil: a client of its own
	Logger   *slog.Logger // nil: slog.Default()
}

// Stats counts what became of the windows pushed or exported. Every window
// ends up in exactly one of Exported, Failed, Dropped and Unconvertible, or
// is still Queued or being sent.
type Stats struct {
	Exported      uint64 // windows the collector accepted
	Failed        uint64 // windows given up on after the last attempt
	Dropped       uint64 // windows pushed out of a full queue, oldest first
	Unconvertible uint64 // windows whose pprof profile was invalid
	Retries       uint64 // attempts after a window's first
	Bytes         uint64 // request bodies the collector accepted, gzipped
	// Rejected sums the profiles a collector reported rejecting in an
	// accepted request (OTLP partial success).
	Rejected uint64
	Queued   int
}

// Exporter sends profiles to one OTLP/HTTP endpoint. Push queues a window and
// returns at once; one goroutine sends the queue in order.
type Exporter struct {
	url    string
	opt    Options
	client *http.Client
	log    *slog.Logger

	mu     sync.Mutex
	queue  []window
	wake   chan struct{} // one token: the queue is not empty or closing
	closed bool
	done   chan struct{}
	cancel context.CancelFunc

	exported, failed, dropped, unconvertible, retries, rejected, bytes atomic.Uint64
}

type window struct {
	p   *profile.Profile
	res Resource
}

// NewExporter checks endpoint (an http or https URL such as
// http://collector:4318, the receiver's base address) and starts the
// goroutine that sends what Push queues. Close stops it.
func NewExporter(endpoint string, opt Options) (*Exporter, error) {
	target, err := profilesURL(endpoint)
	if err != nil {
		return nil, err
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Attempts <= 0 {
		opt.Attempts = DefaultAttempts
	}
	if opt.Backoff <= 0 {
		opt.Backoff = DefaultBackoff
	}
	if opt.Queue <= 0 {
		opt.Queue = DefaultQueue
	}
	e := &Exporter{
		url:    target,
		opt:    opt,
		client: opt.Client,
		log:    opt.Logger,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	if e.client == nil {
		e.client = &http.Client{}
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go e.run(ctx)
	return e, nil
}

// profilesURL turns the endpoint a user gives into the URL profiles are
// posted to.
func profilesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("otlp endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("otlp endpoint %q: want http://host:port or https://host:port (the collector's OTLP/HTTP receiver, port 4318 by default)", endpoint)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("otlp endpoint %q: a query or fragment has no meaning here; give the receiver's base URL", endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + ProfilesPath
	u.RawPath = ""
	return u.String(), nil
}

// CheckEndpoint says whether endpoint is one NewExporter takes, so a
// command can refuse it before it starts anything.
func CheckEndpoint(endpoint string) error {
	_, err := profilesURL(endpoint)
	return err
}

// URL is where the exporter posts profiles.
func (e *Exporter) URL() string { return e.url }

// Push queues one window's profile for export and never blocks: with the
// queue full, the oldest window waiting is dropped and counted. The exporter
// owns p from then on; the caller must not change it.
func (e *Exporter) Push(p *profile.Profile, res Resource) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.dropped.Add(1)
		return
	}
	if len(e.queue) >= e.opt.Queue {
		e.queue[0] = window{}
		e.queue = e.queue[1:]
		e.dropped.Add(1)
	}
	e.queue = append(e.queue, window{p, res})
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Stats returns the counts so far; safe to call at any time.
func (e *Exporter) Stats() Stats {
	e.mu.Lock()
	queued := len(e.queue)
	e.mu.Unlock()
	return Stats{
		Exported:      e.exported.Load(),
		Failed:        e.failed.Load(),
		Dropped:       e.dropped.Load(),
		Unconvertible: e.unconvertible.Load(),
		Retries:       e.retries.Load(),
		Rejected:      e.rejected.Load(),
		Bytes:         e.bytes.Load(),
		Queued:        queued,
	}
}

// Close sends what is queued until ctx ends, then stops; windows still queued
// then are counted as dropped. Push after Close drops its window.
func (e *Exporter) Close(ctx context.Context) error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	e.mu.Unlock()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		e.cancel()
		<-e.done
		return fmt.Errorf("close otlp exporter: windows still queued were dropped: %w", ctx.Err())
	}
}

func (e *Exporter) run(ctx context.Context) {
	defer close(e.done)
	defer e.cancel()
	for {
		e.mu.Lock()
		if len(e.queue) == 0 {
			closed := e.closed
			e.mu.Unlock()
			if closed {
				return
			}
			<-e.wake
			continue
		}
		w := e.queue[0]
		e.queue[0] = window{}
		e.queue = e.queue[1:]
		e.mu.Unlock()

		if ctx.Err() != nil {
			e.dropped.Add(1)
			continue
		}
		if err := e.Export(ctx, w.p, w.res); err != nil {
			e.log.Warn("otlp export failed", "url", e.url, "error", err)
		}
	}
}

// Export converts p and sends it now, retrying as Options say, and counts the
// outcome in Stats. Push is the non-blocking way; Export is for a caller that
// wants the error.
func (e *Exporter) Export(ctx context.Context, p *profile.Profile, res Resource) error {
	body, err := encode(p, res)
	if err != nil {
		e.unconvertible.Add(1)
		return err
	}
	backoff := e.opt.Backoff
	for attempt := 1; ; attempt++ {
		rejected, err := e.post(ctx, body)
		if err == nil {
			e.exported.Add(1)
			e.bytes.Add(uint64(len(body)))
			if rejected.count > 0 {
				e.rejected.Add(uint64(rejected.count))
				e.log.Warn("otlp collector rejected profiles", "url", e.url, "rejected", rejected.count, "error", rejected.message)
			}
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) || attempt >= e.opt.Attempts || ctx.Err() != nil {
			e.failed.Add(1)
			return fmt.Errorf("export profile to %s (attempt %d of %d): %w", e.url, attempt, e.opt.Attempts, err)
		}
		e.retries.Add(1)
		wait := backoff
		var busy retryAfterError
		if errors.As(err, &busy) {
			wait = max(wait, busy.after)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			e.failed.Add(1)
			return fmt.Errorf("export profile to %s: %w", e.url, ctx.Err())
		}
		backoff *= 2
	}
}

// encode returns the gzipped OTLP request body for p. An
// ExportProfilesServiceRequest has the same fields as ProfilesData, so the
// pprofile marshaler writes it without the gRPC service package.
func encode(p *profile.Profile, res Resource) ([]byte, error) {
	op, err := Convert(p, res)
	if err != nil {
		return nil, err
	}
	raw, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(op)
	if err != nil {
		return nil, fmt.Errorf("encode otlp profiles: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("gzip otlp profiles: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip otlp profiles: %w", err)
	}
	return buf.Bytes(), nil
}

// retryAfterError is a response that asks the client to wait before it
// tries again.
type retryAfterError struct {
	error
	after time.Duration
}

func (e retryAfterError) Unwrap() error { return e.error }

// retryAfter reads a Retry-After header in seconds, the form the collector
// sends; an HTTP date or a malformed value is ignored.
func retryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

// permanentError is a response that will not change on retry.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

type partialSuccess struct {
	count   int64
	message string
}

func (e *Exporter) post(ctx context.Context, body []byte) (partialSuccess, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return partialSuccess{}, permanentError{err}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set(versionHeader, version)
	resp, err := e.client.Do(req)
	if err != nil {
		return partialSuccess{}, err
	}
	defer resp.Body.Close()
	// Responses are small; a bound keeps a misbehaving server from
	// holding memory.
	msg, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return partialSuccess{}, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("collector answered %s: %s", resp.Status, responseText(msg))
		if retryable(resp.StatusCode) {
			if d := retryAfter(resp.Header); d > 0 {
				return partialSuccess{}, retryAfterError{err, d}
			}
			return partialSuccess{}, err
		}
		return partialSuccess{}, permanentError{err}
	}
	ps, err := decodeResponse(msg)
	if err != nil {
		// The collector accepted the data; only the report of a partial
		// success is unreadable.
		e.log.Warn("otlp collector response unreadable", "url", e.url, "error", err)
	}
	return ps, nil
}

// retryable says whether an HTTP status may succeed on a later attempt, as
// the OTLP/HTTP specification lists them.
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// responseText is an error body fit for one log line: the collector answers
// with a protobuf google.rpc.Status whose message (field 2) is the text.
func responseText(msg []byte) string {
	if s, ok := protoString(msg, 2); ok {
		return s
	}
	s := strings.ToValidUTF8(string(msg), "?")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}

// decodeResponse reads the partial success of an
// ExportProfilesServiceResponse: field 1, with rejected_profiles (1) and
// error_message (2).
func decodeResponse(msg []byte) (partialSuccess, error) {
	var ps partialSuccess
	err := eachField(msg, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			switch {
			case num == 1 && typ == protowire.VarintType:
				n, _ := protowire.ConsumeVarint(v)
				ps.count = int64(n)
			case num == 2 && typ == protowire.BytesType:
				ps.message = string(v)
			}
			return nil
		})
	})
	if err != nil {
		return partialSuccess{}, fmt.Errorf("decode export response: %w", err)
	}
	return ps, nil
}

func protoString(msg []byte, field protowire.Number) (string, bool) {
	var s string
	var found bool
	err := eachField(msg, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num == field && typ == protowire.BytesType {
			s, found = string(v), true
		}
		return nil
	})
	return s, err == nil && found && s != ""
}

// eachField calls fn with each field of a protobuf message: for a varint the
// encoded varint, for bytes the payload.
func eachField(msg []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		var v []byte
		if typ == protowire.BytesType {
			b, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return protowire.ParseError(m)
			}
			v, n = b, m
		} else {
			n = protowire.ConsumeFieldValue(num, typ, msg)
			if n < 0 {
				return protowire.ParseError(n)
			}
			v = msg[:n]
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		msg = msg[n:]
	}
	return nil
}
