package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/snagtrace/snag/internal/bench"
)

// parseSize reads a byte count with an optional binary suffix: 512, 64K,
// 256M, 1G (or KiB, MiB, GiB).
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	shift := 0
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		}
	}
	if shift > 0 {
		t = t[:len(t)-1]
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size like 1G or 256M", s)
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}

// sizeFlag is a byte count that may also be given as a bare switch, which
// means bench.DefaultStraceLog.
type sizeFlag int64

func (f *sizeFlag) String() string   { return strconv.FormatInt(int64(*f), 10) }
func (f *sizeFlag) IsBoolFlag() bool { return true }

func (f *sizeFlag) Set(s string) error {
	switch s {
	case "true":
		*f = bench.DefaultStraceLog
		return nil
	case "false":
		*f = 0
		return nil
	}
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*f = sizeFlag(n)
	return nil
}
