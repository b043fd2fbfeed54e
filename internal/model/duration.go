package model

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// One duration format for every output: the tables, the HTML page, the
// flame graph's labels.

// FormatDuration renders a duration with three significant digits in the
// largest unit that keeps it at or above one: 245ns, 1.20µs, 50.1ms, 3.20s.
// From a minute on it switches to 2m05s and from an hour to 1h02m, where
// seconds no longer matter.
func FormatDuration(d time.Duration) string {
	neg := d < 0
	if neg {
		if d == math.MinInt64 {
			d = math.MaxInt64
		} else {
			d = -d
		}
	}
	if d < time.Minute {
		d = roundSignificant(d, 3)
	}
	var s string
	switch {
	case d < time.Microsecond:
		s = strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		s = ThreeDigits(float64(d)/float64(time.Microsecond), "µs")
	case d < time.Second:
		s = ThreeDigits(float64(d)/float64(time.Millisecond), "ms")
	case d < time.Minute:
		s = ThreeDigits(float64(d)/float64(time.Second), "s")
	case d < time.Hour:
		d = d.Round(time.Second)
		s = fmt.Sprintf("%dm%02ds", d/time.Minute, (d%time.Minute)/time.Second)
	default:
		d = d.Round(time.Minute)
		s = fmt.Sprintf("%dh%02dm", d/time.Hour, (d%time.Hour)/time.Minute)
	}
	if neg {
		return "-" + s
	}
	return s
}

// roundSignificant rounds d to n significant decimal digits, so that
// 999.6ms becomes 1.00s instead of "1000ms".
func roundSignificant(d time.Duration, n int) time.Duration {
	unit := time.Duration(1)
	for v := d; v >= pow10(n); v /= 10 {
		unit *= 10
	}
	if unit == 1 {
		return d
	}
	if r := d.Round(unit); r > 0 {
		return r
	}
	return d // Round saturates near the int64 limit; keep the value
}

func pow10(n int) time.Duration {
	p := time.Duration(1)
	for range n {
		p *= 10
	}
	return p
}

// ThreeDigits prints v (1 <= v < 1000, already rounded to three
// significant digits) with three significant digits.
func ThreeDigits(v float64, unit string) string {
	switch {
	case v < 9.995:
		return strconv.FormatFloat(v, 'f', 2, 64) + unit
	case v < 99.95:
		return strconv.FormatFloat(v, 'f', 1, 64) + unit
	default:
		return strconv.FormatFloat(v, 'f', 0, 64) + unit
	}
}
