// Package perfmap names JIT-compiled code from the /tmp/perf-PID.map files
// that JITs write for perf: node and V8 with --perf-basic-prof or
// --perf-prof, a JVM with perf-map-agent, .NET with DOTNET_PerfMapEnabled,
// LuaJIT. Each line is "START SIZE name", START and SIZE in hex.
//
// The file is the target's to write, and a target may be hostile: it is
// opened inside the target's root (so /tmp is the target's /tmp), only as a
// regular file of bounded size, without blocking, and its lines are parsed
// defensively. Maps only grow while a JIT runs, so a re-read parses only the
// lines appended since the last one.
package perfmap

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/safefile"
)

// MaxFileSize bounds a perf map snag reads. A long-running node process
// with --perf-basic-prof writes some tens of bytes per compiled function;
// 256 MiB is millions of functions, past which the file is not a map.
const MaxFileSize = 256 << 20

// MaxLine bounds one line; a longer one is skipped, not parsed.
const MaxLine = 4096

// RefreshInterval bounds how often an address that misses re-reads a
// process's map: a JIT adds code all the time, but addresses that will
// never be in the map (a garbage return address) must not re-read it on
// every stack.
var RefreshInterval = time.Second

// Symbol is one line of a perf map: code at [Start, End) named Name.
type Symbol struct {
	Start, End uint64
	Name       string
	seq        int // line number: a later line wins over an earlier one covering the same code
}

// Table is a parsed perf map.
type Table struct {
	syms    []Symbol // sorted by Start, then seq
	maxSize uint64   // the largest End-Start, bounding a lookup's backward scan
	lines   int
	Skipped int // lines that did not parse
}

// Parse reads a perf map. Lines that do not parse are counted in Skipped
// and otherwise ignored: a JIT may be writing the last line as it is read.
func Parse(r io.Reader) (*Table, error) {
	t := &Table{}
	if err := t.add(r); err != nil {
		return nil, err
	}
	return t, nil
}

// add parses lines from r and adds them to t.
func (t *Table) add(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var added []Symbol
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			t.lines++
			if s, ok := parseLine(line); ok {
				s.seq = t.lines
				added = append(added, s)
			} else {
				t.Skipped++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if len(added) == 0 {
		return nil
	}
	for _, s := range added {
		t.maxSize = max(t.maxSize, s.End-s.Start)
	}
	t.syms = append(t.syms, added...)
	slices.SortStableFunc(t.syms, func(a, b Symbol) int {
		if a.Start != b.Start {
			if a.Start < b.Start {
				return -1
			}
			return 1
		}
		return a.seq - b.seq
	})
	return nil
}

// readLine returns the next line without its newline; a line over MaxLine
// comes back empty (and counts as nothing).
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = br.ReadSlice('\n')
		}
		return nil, err
	}
	if len(line) > MaxLine {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), err
}

// parseLine parses "START SIZE name" (hex, with or without 0x).
func parseLine(line []byte) (Symbol, bool) {
	s := string(line)
	start, rest, ok := strings.Cut(s, " ")
	if !ok {
		return Symbol{}, false
	}
	size, name, ok := strings.Cut(rest, " ")
	if !ok {
		return Symbol{}, false
	}
	a, err1 := strconv.ParseUint(strings.TrimPrefix(start, "0x"), 16, 64)
	n, err2 := strconv.ParseUint(strings.TrimPrefix(size, "0x"), 16, 64)
	name = strings.TrimSpace(name)
	if err1 != nil || err2 != nil || n == 0 || a+n < a || name == "" || !printable(name) {
		return Symbol{}, false
	}
	return Symbol{Start: a, End: a + n, Name: name}, true
}

// printable refuses names with control characters, which a report would
// print as they are.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}

// maxScan bounds how many earlier symbols a lookup looks through for a
// later one covering the address (code moved and its range reused).
const maxScan = 64

// Find returns the symbol covering addr; when several lines cover it, the
// last written, which names the code there now.
func (t *Table) Find(addr uint64) (Symbol, bool) {
	i, _ := slices.BinarySearchFunc(t.syms, addr+1, func(s Symbol, v uint64) int {
		if s.Start < v {
			return -1
		}
		return 1
	})
	var best Symbol
	found := false
	for j := i - 1; j >= 0 && i-j <= maxScan; j-- {
		s := t.syms[j]
		if addr-s.Start >= t.maxSize {
			break // no earlier symbol is long enough to reach addr
		}
		if addr < s.End && (!found || s.seq > best.seq) {
			best, found = s, true
		}
	}
	return best, found
}

// Len is the number of symbols.
func (t *Table) Len() int { return len(t.syms) }

// Maps reads the perf maps of traced processes, caching each per pid. It is
// safe for use by one goroutine.
type Maps struct {
	fs    procfs.FS
	procs map[int]*proc
}

type proc struct {
	t    *Table
	off  int64 // bytes parsed so far: whole lines only
	read time.Time
	err  error
}

// New returns Maps reading processes through fs.
func New(fs procfs.FS) *Maps { return &Maps{fs: fs, procs: map[int]*proc{}} }

// Forget drops what is known about pid.
func (m *Maps) Forget(pid int) { delete(m.procs, pid) }

// Lookup returns the perf map symbol covering addr in pid. The map is read
// the first time pid is looked up, and again after a miss at most once per
// RefreshInterval.
func (m *Maps) Lookup(pid int, addr uint64) (Symbol, bool) {
	p := m.procs[pid]
	if p == nil {
		p = &proc{t: &Table{}}
		m.procs[pid] = p
		m.refresh(pid, p)
	}
	if s, ok := p.t.Find(addr); ok {
		return s, true
	}
	if time.Since(p.read) < RefreshInterval {
		return Symbol{}, false
	}
	m.refresh(pid, p)
	return p.t.Find(addr)
}

// Err reports why pid's map could not be read, nil when it was (or has not
// been tried).
func (m *Maps) Err(pid int) error {
	if p := m.procs[pid]; p != nil {
		return p.err
	}
	return nil
}

func (m *Maps) refresh(pid int, p *proc) {
	p.read = time.Now()
	f, err := Open(m.fs, pid)
	if err != nil {
		p.err = err
		return
	}
	defer f.Close()
	p.err = readFrom(f, p)
}

// readFrom parses the whole lines f has past p.off.
func readFrom(f *os.File, p *proc) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < p.off {
		// Truncated: a new process reuses the pid, or the JIT started over.
		p.t, p.off = &Table{}, 0
	}
	if fi.Size() == p.off {
		return nil
	}
	buf := make([]byte, fi.Size()-p.off)
	n, err := f.ReadAt(buf, p.off)
	if err != nil && err != io.EOF {
		return fmt.Errorf("read perf map: %w", err)
	}
	buf = buf[:n]
	// Parse whole lines only: the JIT may be writing the last one.
	end := bytes.LastIndexByte(buf, '\n') + 1
	if err := p.t.add(bytes.NewReader(buf[:end])); err != nil {
		return err
	}
	p.off += int64(end)
	return nil
}

// Path is where process pid's JIT writes its perf map, as pid sees it: the
// JIT names the file by its own pid, which inside a PID namespace is not
// ours.
func Path(fs procfs.FS, pid int) string {
	return fmt.Sprintf("/tmp/perf-%d.map", nsPID(fs, pid))
}

// Open opens process pid's perf map inside its root.
func Open(fs procfs.FS, pid int) (*os.File, error) {
	name := Path(fs, pid)
	f, err := safefile.InRoot(filepath.Join(fs.Root, strconv.Itoa(pid), "root"), name, safefile.Options{MaxSize: MaxFileSize})
	if err != nil {
		return nil, fmt.Errorf("open %s of pid %d: %w", name, pid, err)
	}
	return f, nil
}

// nsPID returns pid as its innermost PID namespace numbers it (the last
// NSpid field of /proc/PID/status), or pid when that is not known.
func nsPID(fs procfs.FS, pid int) int {
	b, err := os.ReadFile(filepath.Join(fs.Root, strconv.Itoa(pid), "status"))
	if err != nil {
		return pid
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if n, err := strconv.Atoi(f[len(f)-1]); err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return pid
}

// v8Name matches V8's names for JavaScript code: "JS:*handleRequest
// /srv/app.js:12:24" (the marker says which tier compiled it: ~ bytecode,
// ^ Sparkplug, + Maglev, * TurboFan), and the older "LazyCompile:*name
// file:line".
var v8Name = regexp.MustCompile(`^(?:JS|LazyCompile|Function|Eval|Script):[~^+*]?(.*?) ?([^ ]*?):(\d+)(?::\d+)?$`)

// Frame turns a perf map symbol into a frame for addr. V8's JavaScript
// names become interpreter frames with the script and line; any other name
// is a native frame of JIT code.
func Frame(s Symbol, addr uint64) model.Frame {
	if m := v8Name.FindStringSubmatch(s.Name); m != nil && m[2] != "" {
		line, _ := strconv.Atoi(m[3])
		fn := m[1]
		if fn == "" {
			fn = "(anonymous)"
		}
		return model.Frame{Addr: addr, Function: fn, Offset: addr - s.Start, Module: ScriptModule(m[2]), Path: m[2],
			Line: line, Kind: model.FrameInterpreter}
	}
	return model.Frame{Addr: addr, Function: s.Name, Offset: addr - s.Start, Module: "[jit]", Kind: model.FrameNative}
}

// ScriptModule is how a frame names a script: a file by its base name,
// node's own modules by their specifier ("node:internal/fs/utils").
func ScriptModule(script string) string {
	if strings.HasPrefix(script, "node:") {
		return script
	}
	return filepath.Base(script)
}
