package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

const (
	defaultLoadURL      = "http://" + defaultAddr + "/"
	defaultConcurrency  = 8
	defaultLoadDuration = 5 * time.Second
	// countRunCap bounds a run given only -n, so a stuck server cannot keep
	// the generator alive forever.
	countRunCap = time.Minute
	// requestTimeout bounds one request; with 8 clients serialised behind a
	// 20ms database, a healthy request takes well under a second.
	requestTimeout = 10 * time.Second
)

type loadConfig struct {
	url         string
	concurrency int
	duration    time.Duration
	requests    int
}

func parseLoadFlags(args []string) (loadConfig, error) {
	var cfg loadConfig
	fs := pflag.NewFlagSet("load", pflag.ContinueOnError)
	fs.StringVar(&cfg.url, "url", defaultLoadURL, "URL to request")
	fs.IntVarP(&cfg.concurrency, "concurrency", "c", defaultConcurrency, "clients sending requests at the same time")
	fs.DurationVarP(&cfg.duration, "duration", "d", defaultLoadDuration, "stop after this long")
	fs.IntVarP(&cfg.requests, "requests", "n", 0, "stop after this many requests (then -d defaults to "+countRunCap.String()+")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return cfg, err
		}
		return cfg, usageError{err}
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if cfg.requests > 0 && !fs.Changed("duration") {
		cfg.duration = countRunCap
	}
	switch u, err := url.Parse(cfg.url); {
	case err != nil:
		return cfg, usageError{fmt.Errorf("--url: %w", err)}
	case u.Scheme != "http" || u.Host == "":
		return cfg, usageError{fmt.Errorf("--url must be an http:// URL, got %q", cfg.url)}
	case cfg.concurrency < 1:
		return cfg, usageError{fmt.Errorf("-c must be at least 1, got %d", cfg.concurrency)}
	case cfg.duration <= 0:
		return cfg, usageError{fmt.Errorf("-d must be positive, got %s", cfg.duration)}
	case cfg.requests < 0:
		return cfg, usageError{fmt.Errorf("-n must not be negative, got %d", cfg.requests)}
	}
	return cfg, nil
}

// loadResult is what one load run measured.
type loadResult struct {
	ok        int
	failed    int
	firstErr  error
	elapsed   time.Duration
	latencies []time.Duration // of successful requests, sorted
}

func runLoad(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseLoadFlags(args)
	if err != nil {
		return err
	}
	res := generateLoad(ctx, cfg)
	if err := res.print(stdout, cfg); err != nil {
		return fmt.Errorf("print result: %w", err)
	}
	if res.ok == 0 && res.failed > 0 {
		return fmt.Errorf("every request failed, first: %w", res.firstErr)
	}
	return nil
}

// generateLoad runs cfg.concurrency clients until cfg.requests are done or
// cfg.duration has passed, whichever comes first.
func generateLoad(ctx context.Context, cfg loadConfig) loadResult {
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	client := &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			Proxy:               nil, // the target is local; ignore *_PROXY
			MaxIdleConnsPerHost: cfg.concurrency,
			MaxConnsPerHost:     cfg.concurrency,
			DisableCompression:  true,
		},
	}
	defer client.CloseIdleConnections()

	var (
		issued atomic.Int64
		mu     sync.Mutex
		res    loadResult
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range cfg.concurrency {
		wg.Go(func() {
			var lat []time.Duration
			failed := 0
			var firstErr error
			for ctx.Err() == nil {
				if cfg.requests > 0 && issued.Add(1) > int64(cfg.requests) {
					break
				}
				t0 := time.Now()
				err := fetch(ctx, client, cfg.url)
				if ctx.Err() != nil {
					break // cut off by the end of the run, not a failure
				}
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			res.latencies = append(res.latencies, lat...)
			res.failed += failed
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.ok = len(res.latencies)
	slices.Sort(res.latencies)
	return res
}

func fetch(ctx context.Context, client *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("status %s: %q", resp.Status, msg)
	}
	// Drain so the connection is reused, as a browser or proxy would.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	return nil
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted values, or 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 || p <= 0 {
		return 0
	}
	if p >= 100 {
		return sorted[len(sorted)-1]
	}
	// Nearest rank: the smallest value with at least p% of values <= it.
	rank := int(math.Ceil(float64(len(sorted)) * p / 100))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

func (r loadResult) print(w io.Writer, cfg loadConfig) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "url\t%s\n", cfg.url)
	fmt.Fprintf(tw, "concurrency\t%d\n", cfg.concurrency)
	fmt.Fprintf(tw, "requests\t%d\n", r.ok)
	fmt.Fprintf(tw, "errors\t%d\n", r.failed)
	fmt.Fprintf(tw, "elapsed\t%s\n", r.elapsed.Round(time.Millisecond))
	fmt.Fprintf(tw, "rate\t%.1f req/s\n", r.rate())
	fmt.Fprintf(tw, "latency p50\t%s\n", percentile(r.latencies, 50).Round(time.Microsecond))
	fmt.Fprintf(tw, "latency p99\t%s\n", percentile(r.latencies, 99).Round(time.Microsecond))
	fmt.Fprintf(tw, "latency max\t%s\n", percentile(r.latencies, 100).Round(time.Microsecond))
	if r.firstErr != nil {
		fmt.Fprintf(tw, "first error\t%v\n", r.firstErr)
	}
	return tw.Flush()
}
