// Package stracelog reads strace logs into the trace model, so that a log
// an engineer already has (`strace -f -tt -T -yy`, or any subset of those
// flags, or `-ff` per-process files) is analyzed exactly like a live trace.
//
// The parser streams: it keeps per-thread and per-fd state, the aggregates
// and the events it emits (slow calls, connections, process lifecycle), and
// nothing proportional to the log's length.
package stracelog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// Options tunes what the parser keeps.
type Options struct {
	// Threshold: syscalls at least this slow become EvSyscall events
	// (0 keeps every call). The caller applies its default.
	Threshold time.Duration
	// MaxBadLines is how many unparsable line numbers Stats remembers
	// (default 5).
	MaxBadLines int
	// Arch names the syscall numbering of the traced machine ("amd64",
	// "arm64"); empty means amd64.
	Arch string
	// Day is the date of a log stamped with times of day only (-t, -tt);
	// its year, month and day anchor Trace.Start. Zero leaves Start on
	// January 1st of year 1, the time of day still exact.
	Day time.Time
}

// Stats says how much of the input was understood.
type Stats struct {
	Lines, Parsed, Unparsed uint64
	FirstBad                []int // line numbers (1-based, within their file) of the first unparsable lines
	Files                   int
}

// sniffLines is how far into an input the parser reads without finding a
// single strace line before it calls the input something else.
const sniffLines = 1000

// maxLine bounds one line; longer ones (never seen from strace, common in
// binary files) are counted as unparsable and skipped.
const maxLine = 1 << 20

// Parse reads one strace log. It fails only when nothing in the input reads
// as strace output; unparsable lines are counted in Stats and Drops.
func Parse(r io.Reader, opt Options) (*model.Trace, *Stats, error) {
	p := newParser(opt)
	p.stats.Files = 1
	if err := p.read(r, 0); err != nil {
		return nil, &p.stats, err
	}
	if p.recognized == 0 {
		return nil, &p.stats, p.notStrace()
	}
	return p.finish(), &p.stats, nil
}

// ParseFiles reads the per-process files of `strace -ff -o NAME`
// (NAME.PID each). Lines without a pid prefix belong to the PID of their
// file's suffix.
func ParseFiles(paths []string, opt Options) (*model.Trace, *Stats, error) {
	p := newParser(opt)
	for _, path := range paths {
		tid := 0
		if ext := filepath.Ext(path); len(ext) > 1 {
			if v, err := strconv.Atoi(ext[1:]); err == nil && v > 0 {
				tid = v
			}
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, &p.stats, fmt.Errorf("open strace log: %w", err)
		}
		before := p.recognized
		err = p.read(f, tid)
		f.Close()
		p.stats.Files++
		if err != nil && !errors.Is(err, errNotStrace) {
			return nil, &p.stats, fmt.Errorf("%s: %w", path, err)
		}
		if p.recognized == before && len(paths) == 1 {
			return nil, &p.stats, fmt.Errorf("%s: %w", path, p.notStrace())
		}
	}
	if p.recognized == 0 {
		return nil, &p.stats, fmt.Errorf("%d files: %w", len(paths), p.notStrace())
	}
	return p.finish(), &p.stats, nil
}

// Looks reports whether head, the first bytes of an input, looks like an
// strace log: most of its complete lines are strace lines.
func Looks(head []byte) bool {
	lines := bytes.Split(head, []byte{'\n'})
	if len(lines) > 1 && len(lines[len(lines)-1]) > 0 {
		lines = lines[:len(lines)-1] // cut mid-line
	}
	good, total := 0, 0
	for _, l := range lines {
		if total == 20 {
			break
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		total++
		p := newParser(Options{Threshold: time.Hour})
		p.line(l)
		if p.recognized > 0 {
			good++
		}
	}
	return total > 0 && 2*good > total
}

var errNotStrace = errors.New("not an strace log")

func (p *parser) notStrace() error {
	if p.stats.Lines == 0 {
		return fmt.Errorf("empty input: no strace lines: %w", errNotStrace)
	}
	first := p.firstLine
	if len(first) > 60 {
		first = first[:60] + "…"
	}
	return fmt.Errorf("no strace lines in the first %d lines (line 1: %q): %w", p.stats.Lines, first, errNotStrace)
}

// read feeds every line of r to the parser. defaultTID is the thread of
// lines without a pid prefix (0: unknown).
func (p *parser) read(r io.Reader, defaultTID int) error {
	p.beginFile(defaultTID)
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			p.lineNo++
			p.stats.Lines++
			p.noteFirst(line)
			p.bad()
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
		} else if len(line) > 0 {
			p.line(line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", p.lineNo+1, err)
		}
		if p.recognized == 0 && p.stats.Lines >= sniffLines {
			return p.notStrace()
		}
	}
}
