package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/snagtrace/snag/analyzer"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/recording"
	"github.com/snagtrace/snag/internal/stracelog"
)

func cmdAnalyze(_ context.Context, args []string, env Env) error {
	var of outputFlags
	var threshold = analyzer.DefaultThreshold
	fs := newFlags("analyze", "snag analyze FILE [FILE...] [--expect ...] [--format table|json] [-o FILE] [--fail-on high|medium|low]\n  FILE is a snag recording or an strace log (strace -f -tt -T -yy); several files are one strace -ff run", env)
	of.register(fs)
	fs.DurationVar(&threshold, "threshold", threshold, "strace logs: calls at least this slow are analyzed one by one")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("analyze: give a recording or an strace log")
	}
	oc, err := of.prepare()
	if err != nil {
		return err
	}
	t, err := load(fs.Args(), threshold, env)
	if err != nil {
		return inputError{err}
	}
	return analyzeAndReport(t, oc, env)
}

// load detects the input kind from its first bytes and reads it.
func load(paths []string, threshold time.Duration, env Env) (*model.Trace, error) {
	head, err := sniff(paths[0])
	if err != nil {
		return nil, err
	}
	switch {
	case recording.Looks(head):
		if len(paths) > 1 {
			return nil, errors.New("analyze: give one recording at a time")
		}
		f, err := os.Open(paths[0])
		if err != nil {
			return nil, err
		}
		defer f.Close()
		t, st, err := recording.Read(f)
		if err != nil {
			return nil, fmt.Errorf("read recording %s: %w", paths[0], err)
		}
		if st.Truncated {
			fmt.Fprintf(env.Stderr, "snag: %s is truncated (%s); reporting the %d events before that\n", paths[0], st.Reason, st.Events)
		}
		return t, nil
	case stracelog.Looks(head):
		opt := stracelog.Options{Threshold: threshold}
		if fi, err := os.Stat(paths[0]); err == nil {
			opt.Day = fi.ModTime() // -tt logs carry times of day only
		}
		t, st, err := stracelog.ParseFiles(paths, opt)
		if err != nil {
			return nil, err
		}
		if st.Unparsed > 0 {
			fmt.Fprintf(env.Stderr, "snag: skipped %d of %d lines that are not strace output (first at line %v)\n", st.Unparsed, st.Lines, st.FirstBad)
		}
		return t, nil
	}
	return nil, fmt.Errorf("%s is neither a snag recording nor an strace log", paths[0])
}

func sniff(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return head[:n], nil
}
