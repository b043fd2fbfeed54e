package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// cpuTimes returns the busy and total jiffies of one CPU's line in
// /proc/stat ("cpu1 user nice system idle iowait irq softirq steal ...").
func cpuTimes(stat []byte, cpu int) (busy, total uint64, err error) {
	prefix := []byte("cpu" + strconv.Itoa(cpu) + " ")
	sc := bufio.NewScanner(bytes.NewReader(stat))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), prefix)
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 4 {
			return 0, 0, fmt.Errorf("cpu%d: %d fields", cpu, len(f))
		}
		// Guest time is already counted in user time.
		for i, s := range f[:min(len(f), 8)] {
			v, err := strconv.ParseUint(string(s), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("cpu%d field %d: %w", cpu, i+1, err)
			}
			total += v
			if i != 3 && i != 4 { // idle, iowait
				busy += v
			}
		}
		return busy, total, nil
	}
	return 0, 0, fmt.Errorf("no cpu%d in /proc/stat", cpu)
}

// cpuBusy measures how busy cpu is over d, from 0 to 1.
func cpuBusy(ctx context.Context, cpu int, d time.Duration) (float64, error) {
	read := func() (uint64, uint64, error) {
		data, err := os.ReadFile(procRoot + "/stat")
		if err != nil {
			return 0, 0, err
		}
		return cpuTimes(data, cpu)
	}
	b0, t0, err := read()
	if err != nil {
		return 0, err
	}
	if err := sleepCtx(ctx, d); err != nil {
		return 0, err
	}
	b1, t1, err := read()
	if err != nil {
		return 0, err
	}
	if t1 <= t0 || b1 < b0 {
		return 0, nil
	}
	return float64(b1-b0) / float64(t1-t0), nil
}
