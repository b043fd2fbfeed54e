package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/snagtrace/snag/internal/otlpprof"
)

// otlpCollector publishes what the OTLP exporter did with the windows'
// profiles, so a collector that is down shows on the dashboard.
type otlpCollector struct {
	exp            *otlpprof.Exporter
	windows, bytes *prometheus.Desc
	queued         *prometheus.Desc
}

func newOTLPCollector(exp *otlpprof.Exporter) *otlpCollector {
	return &otlpCollector{
		exp:     exp,
		windows: prometheus.NewDesc("snag_otlp_profiles_total", "Windows' profiles by what became of them: exported, failed (after retries), dropped (queue full), rejected (by the collector), unconvertible.", []string{"outcome"}, nil),
		bytes:   prometheus.NewDesc("snag_otlp_sent_bytes_total", "Bytes of OTLP requests the collector accepted (gzipped).", nil, nil),
		queued:  prometheus.NewDesc("snag_otlp_queued_profiles", "Windows' profiles waiting to be sent.", nil, nil),
	}
}

func (c *otlpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.windows
	ch <- c.bytes
	ch <- c.queued
}

func (c *otlpCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.exp.Stats()
	for _, o := range []struct {
		outcome string
		n       uint64
	}{{"exported", s.Exported}, {"failed", s.Failed}, {"dropped", s.Dropped}, {"rejected", s.Rejected}, {"unconvertible", s.Unconvertible}} {
		ch <- prometheus.MustNewConstMetric(c.windows, prometheus.CounterValue, float64(o.n), o.outcome)
	}
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Queued))
}
