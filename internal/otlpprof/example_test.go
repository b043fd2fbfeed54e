package otlpprof_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/google/pprof/profile"

	"github.com/snagtrace/snag/internal/otlpprof"
)

// An agent pushes each window's profile and publishes the exporter's
// counts; Push never waits for the collector.
func ExampleExporter() {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}))
	defer collector.Close()

	e, err := otlpprof.NewExporter(collector.URL, otlpprof.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	window := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "blocked", Unit: "nanoseconds"}},
		TimeNanos:  time.Now().UnixNano(),
	}
	e.Push(window, otlpprof.Resource{ServiceName: "shop", PID: 4242, Comm: "python3"})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		fmt.Println(err)
	}
	s := e.Stats()
	fmt.Println("exported", s.Exported, "failed", s.Failed, "dropped", s.Dropped)
	// Output:
	// POST /v1development/profiles application/x-protobuf
	// exported 1 failed 0 dropped 0
}
