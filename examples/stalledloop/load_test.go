package main

import (
	"errors"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even is the lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(seq(1, 100)...), 99, 99 * time.Millisecond},
		{"p99 of 10 is the max", ms(seq(1, 10)...), 99, 10 * time.Millisecond},
		{"p100", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"p0", ms(1, 2, 3), 0, 0},
		{"tiny p is the min", ms(1, 2, 3), 0.1, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Fatalf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestParseLoadFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    loadConfig
		wantErr bool
	}{
		{"defaults", nil, loadConfig{url: defaultLoadURL, concurrency: 8, duration: 5 * time.Second}, false},
		{"count alone lifts the time cap", []string{"-n", "100"}, loadConfig{url: defaultLoadURL, concurrency: 8, duration: countRunCap, requests: 100}, false},
		{"count and time", []string{"-n", "100", "-d", "2s", "-c", "3"}, loadConfig{url: defaultLoadURL, concurrency: 3, duration: 2 * time.Second, requests: 100}, false},
		{"url", []string{"--url", "http://h:1/x"}, loadConfig{url: "http://h:1/x", concurrency: 8, duration: 5 * time.Second}, false},
		{"https refused", []string{"--url", "https://h/"}, loadConfig{}, true},
		{"zero clients", []string{"-c", "0"}, loadConfig{}, true},
		{"zero duration", []string{"-d", "0s"}, loadConfig{}, true},
		{"negative count", []string{"-n", "-1"}, loadConfig{}, true},
		{"stray argument", []string{"x"}, loadConfig{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLoadFlags(tt.args)
			if tt.wantErr {
				var ue usageError
				if !errors.As(err, &ue) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseLoadFlags = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
