package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/snagtrace/snag/internal/stracelog/loggen"
)

// DefaultStraceLog is the size of log the -strace-log section analyzes:
// big enough that start-up does not count, small enough for a tmpfs.
const DefaultStraceLog = 1 << 30

// logSeed fixes the generated log, so runs analyze the same content.
const logSeed = 1

// logBench is how fast `snag analyze` reads an strace log.
type logBench struct {
	size    int64
	elapsed time.Duration
	maxRSS  int64
}

func (l *logBench) mbps() float64 { return float64(l.size) / 1e6 / l.elapsed.Seconds() }

// benchStraceLog writes a synthetic strace log of about size bytes to a
// temporary file and times snag analyzing it, output discarded.
func benchStraceLog(ctx context.Context, snagPath string, size int64, log io.Writer) (*logBench, error) {
	f, err := os.CreateTemp("", "snagbench-*.strace")
	if err != nil {
		return nil, fmt.Errorf("strace log: %w", err)
	}
	defer os.Remove(f.Name())
	fmt.Fprintf(log, "strace log: generating %d MiB in %s\n", size>>20, f.Name())
	if err := loggen.GenerateLog(f, size, logSeed); err != nil {
		f.Close()
		return nil, fmt.Errorf("strace log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("strace log: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("strace log: %w", err)
	}
	cmd := exec.CommandContext(ctx, snagPath, "analyze", f.Name(), "--format", "json")
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(log, "strace log: snag analyze %s --format json\n", f.Name())
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	// snag analyze exits 1 when it reports findings; only a failure to
	// analyze counts.
	if err != nil && (cmd.ProcessState == nil || cmd.ProcessState.ExitCode() > 1) {
		return nil, fmt.Errorf("strace log: snag analyze: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	lb := &logBench{size: st.Size(), elapsed: elapsed}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		lb.maxRSS = ru.Maxrss * 1024
	}
	return lb, nil
}
