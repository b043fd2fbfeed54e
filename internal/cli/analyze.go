package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
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

// load detects the kind of each input from its first bytes and reads
// them: one recording, or strace logs (several are one strace -ff run).
func load(paths []string, threshold time.Duration, env Env) (*model.Trace, error) {
	var recordings, logs []string
	for _, path := range paths {
		head, err := sniff(path)
		if err != nil {
			return nil, err
		}
		switch {
		case recording.Looks(head):
			recordings = append(recordings, path)
		case stracelog.Looks(head):
			logs = append(logs, path)
		default:
			return nil, fmt.Errorf("%s is neither a snag recording nor an strace log", path)
		}
	}
	if len(recordings) > 0 {
		if len(paths) > 1 {
			return nil, fmt.Errorf("analyze: %s is a snag recording: give it alone (several files are read as the logs of one strace -ff run)", recordings[0])
		}
		return loadRecording(paths[0], env)
	}
	opt := stracelog.Options{Threshold: threshold}
	if fi, err := os.Stat(logs[0]); err == nil {
		opt.Day = fi.ModTime() // -tt logs carry times of day only
	}
	t, st, err := stracelog.ParseFiles(logs, opt)
	if err != nil {
		return nil, err
	}
	if st.Unparsed > 0 {
		where := badLines(st.FirstBad, st.Unparsed)
		if len(logs) > 1 {
			where = fmt.Sprintf("in %d files", len(logs)) // line numbers restart in each
		}
		fmt.Fprintf(env.Stderr, "snag: skipped %d of %d lines that are not strace output (%s)\n", st.Unparsed, st.Lines, where)
	}
	return t, nil
}

// badLines names the first unreadable lines: "line 4", "lines 4, 5 and 9",
// "lines 4, 5, 9, … (first 5 of 12)".
func badLines(first []int, total uint64) string {
	nums := make([]string, len(first))
	for i, n := range first {
		nums[i] = strconv.Itoa(n)
	}
	switch {
	case len(nums) == 0:
		return "no line numbers"
	case len(nums) == 1 && total == 1:
		return "line " + nums[0]
	case uint64(len(nums)) == total:
		return "lines " + strings.Join(nums[:len(nums)-1], ", ") + " and " + nums[len(nums)-1]
	}
	return fmt.Sprintf("first at lines %s, …", strings.Join(nums, ", "))
}

func loadRecording(path string, env Env) (*model.Trace, error) {
	f, err := openInput("analyze", path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, st, err := recording.Read(f)
	if err != nil {
		return nil, fmt.Errorf("read recording %s: %w", path, err)
	}
	if st.Truncated {
		fmt.Fprintf(env.Stderr, "snag: %s is truncated (%s); reporting the %d events before that\n", path, st.Reason, st.Events)
	}
	return t, nil
}

// sniffBytes is how much of an input its kind is judged by.
const sniffBytes = 64 << 10

// maxSkipLine bounds the first line skipped when it alone fills the sniff:
// garbage before a log, counted by the parser as one bad line.
const maxSkipLine = 16 << 20

// sniff returns the first bytes of path for detection. Only regular files
// are read (a FIFO would block), and a first line too long to judge by is
// skipped so that the lines after it decide.
func sniff(path string) ([]byte, error) {
	f, err := openInput("analyze", path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, sniffBytes)
	head, err := br.Peek(sniffBytes)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(head) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	if len(head) < sniffBytes || bytes.IndexByte(head, '\n') >= 0 || recording.Looks(head) {
		return bytes.Clone(head), nil
	}
	// One line fills the whole sniff: skip it (up to maxSkipLine).
	for skipped := 0; skipped < maxSkipLine; {
		line, err := br.ReadSlice('\n')
		skipped += len(line)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%s: no line ends in its first %d bytes", path, skipped)
		}
	}
	head, err = br.Peek(sniffBytes)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(head) == 0 {
		return nil, fmt.Errorf("%s has one line of %d bytes or more and nothing else", path, sniffBytes)
	}
	return bytes.Clone(head), nil
}
