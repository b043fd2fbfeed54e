package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// promSample is one line of the Prometheus text format.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// parsePromText reads the samples of a Prometheus text exposition (what
// snag serve's /metrics answers a plain GET with). Comments and blank
// lines are skipped; a line it cannot read is an error, so a change of
// format shows instead of reading as zeros.
func parsePromText(data []byte) ([]promSample, error) {
	var out []promSample
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parsePromLine(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parsePromLine(line string) (promSample, error) {
	s := promSample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no value in %q", line)
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		rest, err := parseLabels(line[1:], s.labels)
		if err != nil {
			return s, fmt.Errorf("%s: %w", s.name, err)
		}
		line = rest
	}
	// The value, then an optional timestamp.
	f := strings.Fields(line)
	if len(f) == 0 || len(f) > 2 {
		return s, fmt.Errorf("%s: want a value and at most a timestamp, got %q", s.name, line)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, fmt.Errorf("%s: value: %w", s.name, err)
	}
	s.value = v
	return s, nil
}

// parseLabels reads `name="value",...}` into labels and returns what
// follows the closing brace. Values may hold \\, \" and \n escapes.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return "", errors.New("bad label")
		}
		name := strings.TrimSpace(s[:eq])
		var v strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(s[i])
				}
				continue
			}
			v.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", fmt.Errorf("label %s: unterminated value", name)
		}
		labels[name] = v.String()
		s = strings.TrimLeft(s[i+1:], " ")
		if strings.HasPrefix(s, ",") {
			s = s[1:]
		} else if !strings.HasPrefix(s, "}") {
			return "", fmt.Errorf("label %s: want , or } after the value", name)
		}
	}
}

// promSum adds up the samples of one metric; found says whether any was
// there, so that a missing metric is not mistaken for a zero.
func promSum(samples []promSample, name string) (sum float64, found bool) {
	for _, s := range samples {
		if s.name == name {
			sum += s.value
			found = true
		}
	}
	return sum, found
}

// promBy adds up the samples of one metric by the value of one label.
func promBy(samples []promSample, name, label string) map[string]float64 {
	out := make(map[string]float64)
	for _, s := range samples {
		if s.name == name {
			out[s.labels[label]] += s.value
		}
	}
	return out
}

// procStat is what the soak reads from /proc/PID/stat.
type procStat struct {
	cpuTicks uint64 // utime + stime, in clock ticks
	rssPages int64
}

// userHZ is the unit of /proc/PID/stat's times: the kernel reports them
// in USER_HZ, 100 on every architecture snag runs on.
const userHZ = 100

// parseProcStat reads utime, stime and rss from a /proc/PID/stat line. The
// name in parentheses may hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parseProcStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no ')' after the name")
	}
	// Fields from 3 (state) on; utime is field 14, stime 15, rss 24.
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("stat: %d fields after the name, want at least 22", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	rss, err3 := strconv.ParseInt(f[21], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("stat: %w", err)
	}
	return procStat{cpuTicks: ut + st, rssPages: rss}, nil
}

// slope is the Theil–Sen slope of y over x: the median of the slopes
// between every two points. A collection moves an agent's RSS by tens of
// MiB from one sample to the next, and a least-squares fit follows such a
// spike near either end of the run; the median does not. NaN for fewer
// than two distinct x.
func slope(x, y []float64) float64 {
	n := min(len(x), len(y))
	var slopes []float64
	for i := range n {
		for j := i + 1; j < n; j++ {
			if x[j] != x[i] {
				slopes = append(slopes, (y[j]-y[i])/(x[j]-x[i]))
			}
		}
	}
	return median(slopes)
}
