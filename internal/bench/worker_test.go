package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for snagbench: the workloads
// re-execute their own executable with WorkerArg.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == WorkerArg {
		err := RunWorker(os.Args[2:])
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestWorkers runs each worker workload and checks that its count grows
// and that stopping it ends the process. It needs no root: the workers
// only pin themselves and make ordinary syscalls.
func TestWorkers(t *testing.T) {
	loads := map[string]func() workload{
		"getppid": func() workload { return newWorkload("getppid") },
		"mtmix":   func() workload { return newWorkload("mtmix") },
	}
	for _, k := range soakMix {
		if k.name != "redis" { // redis_test.go's
			loads["soak-"+k.name] = func() workload { return k.newLoad("soak-test") }
		}
	}
	for name, newLoad := range loads {
		t.Run(name, func(t *testing.T) {
			w := newLoad()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := w.start(ctx); err != nil {
				t.Fatalf("start: %v", err)
			}
			pid := w.pid()
			n0, err := w.count()
			if err != nil {
				t.Fatal(err)
			}
			// Poll rather than time: the count must grow, however slowly.
			for {
				n1, err := w.count()
				if err != nil {
					t.Fatal(err)
				}
				if n1 > n0 {
					break
				}
				if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
					t.Fatalf("count stayed at %d", n0)
				}
			}
			if err := w.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d/task", pid)); err == nil {
				t.Errorf("worker %d still running after stop", pid)
			}
		})
	}
}

func TestUnknownWorker(t *testing.T) {
	if err := RunWorker([]string{"nosuch"}); err == nil {
		t.Error("RunWorker of an unknown workload: no error")
	}
	if err := RunWorker(nil); err == nil {
		t.Error("RunWorker of nothing: no error")
	}
}

func TestValidate(t *testing.T) {
	good := Config{Rounds: 1, Duration: time.Second, Workloads: []string{"getppid"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no rounds", func(c *Config) { c.Rounds = 0 }},
		{"tiny window", func(c *Config) { c.Duration = time.Millisecond }},
		{"no workloads", func(c *Config) { c.Workloads = nil }},
		{"unknown workload", func(c *Config) { c.Workloads = []string{"getppid", "nginx"} }},
		{"negative log", func(c *Config) { c.StraceLog = -1 }},
		{"short soak", func(c *Config) { c.Soak = 10 * time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			if err := c.Validate(); err == nil {
				t.Error("no error")
			}
		})
	}
}
