package agent

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The agent's HTTP paths.
const (
	PathMetrics  = "/metrics"
	PathFindings = "/findings"
	PathBlocked  = "/debug/pprof/blocked"
)

// Collector exports the agent's metrics (METRICS.md).
func (a *Agent) Collector() prometheus.Collector { return a.metrics }

// Handler serves the agent's outputs: the Prometheus metrics (with
// snag's own Go runtime and process metrics), the last window's report
// (snag/v1) and its blocked-time profile (pprof).
func (a *Agent) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.cfg.OTLP != nil {
		reg.MustRegister(newOTLPCollector(a.cfg.OTLP))
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+PathFindings, a.serveFindings)
	mux.HandleFunc("GET "+PathBlocked, a.serveBlocked)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "snag serve\n\n%s\tPrometheus metrics\n%s\tthe last window's report (snag/v1 JSON)\n%s\tthe last window's blocked time (pprof)\n",
			PathMetrics, PathFindings, PathBlocked)
	})
	return mux
}

func (a *Agent) snapshot() *snapshot {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.last
}

// noWindowYet answers before the first window ended: a scraper retries.
func noWindowYet(w http.ResponseWriter) {
	http.Error(w, "no window analyzed yet: the first ends one --interval after the start", http.StatusServiceUnavailable)
}

func (a *Agent) serveFindings(w http.ResponseWriter, _ *http.Request) {
	s := a.snapshot()
	if s == nil {
		noWindowYet(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.json)
}

func (a *Agent) serveBlocked(w http.ResponseWriter, _ *http.Request) {
	s := a.snapshot()
	if s == nil {
		noWindowYet(w)
		return
	}
	if s.err != nil {
		http.Error(w, s.err.Error(), http.StatusInternalServerError)
		return
	}
	// Written whole before the headers go, so a failure is a 500 and
	// not half a profile.
	var buf bytes.Buffer
	if err := s.profile.Write(&buf); err != nil {
		http.Error(w, "write pprof profile: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="blocked.pb.gz"`)
	w.Write(buf.Bytes())
}
