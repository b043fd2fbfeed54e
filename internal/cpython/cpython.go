// Package cpython finds CPython's interpreter state in a traced process
// and turns the code objects the kernel side collected into Python frames.
//
// The kernel side walks from _PyRuntime to the current thread's frame chain
// and keeps each frame's code object pointer; code objects live as long as
// their functions, so names and files are read from the process afterwards.
package cpython

//go:generate go run ./internal/genoffsets -version 3.10
//go:generate go run ./internal/genoffsets -version 3.11
//go:generate go run ./internal/genoffsets -version 3.12

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snagtrace/snag/internal/elfx"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/runtimes"
)

// Offsets are the struct field offsets of one CPython version, and how
// its frames are chained.
type Offsets struct {
	InterpretersHead, ThreadsHead, TstateNext, TstateThreadID uint32
	// TstateFrame leads to the current frame, or with FlagCFrame to the
	// _PyCFrame whose CframeCurrentFrame is.
	TstateFrame, CframeCurrentFrame uint32
	// FrameInstr is prev_instr or instr_ptr; with FlagFrameObject the
	// index f_lasti. FrameIsEntry is 3.11's, FrameOwner 3.12's and later.
	FrameCode, FramePrevious, FrameIsEntry, FrameOwner, FrameInstr uint32
	// CodeQualname is co_name before 3.11, which had no co_qualname.
	CodeFilename, CodeQualname, CodeFirstLineno, CodeLinetable, CodeAdaptive uint32
	BytesSize, BytesData                                                     uint32
	UnicodeLength, UnicodeState, ASCIIData, CompactData                      uint32
	Flags                                                                    Flags
	Lines                                                                    LineFormat
}

// Flags tell the kernel side how a version chains its frames; they are
// bpf's enum py_flag.
type Flags uint32

const (
	FlagCFrame      Flags = 1 << iota // the thread state points to a _PyCFrame (3.11, 3.12)
	FlagIsEntry                       // frames carry is_entry (3.11)
	FlagOwner                         // frames owned by the C stack (owner >= 3) are entry shims (3.12 on)
	FlagTagged                        // the code pointer is a tagged _PyStackRef (3.14 on)
	FlagFrameObject                   // a PyFrameObject chain, one eval call per frame (3.10)
)

// offsets are the generated layouts (zoffsets_3*.go); 3.13 and later
// publish theirs in _Py_DebugOffsets.
var offsets = map[string]Offsets{"3.10": offsets310, "3.11": offsets311, "3.12": offsets312}

// Process is a CPython process snag can walk.
type Process struct {
	PID     int
	Version string // minor version, "3.13"
	Patch   string // "3.13.1" when the interpreter says (Py_Version, _Py_DebugOffsets)
	Runtime uint64 // address of _PyRuntime
	Off     Offsets
	Layout  string // where Off came from, in words
}

// ErrNotPython marks a process with no CPython mapped.
var ErrNotPython = errors.New("no CPython mapped")

// ErrUnsupported marks a CPython whose frames snag cannot read.
var ErrUnsupported = errors.New("frames not readable")

// ErrNoRuntime marks a process where python3.X is mapped but no object
// holding _PyRuntime is: a libpython3.X.so not loaded yet, or stripped.
var ErrNoRuntime = errors.New("no _PyRuntime symbol")

// Detect finds the interpreter mapped into pid: python3.X itself, statically
// linked or not, or libpython3.X.so; where its _PyRuntime is; and its
// layout: from _Py_DebugOffsets (3.13 on) or generated per version.
func Detect(fs procfs.FS, pid int) (*Process, error) {
	maps, err := fs.Maps(pid)
	if err != nil {
		return nil, err
	}
	var noRuntime error
	seen := map[string]bool{}
	for _, m := range maps {
		version, ok := runtimes.PythonObject(m.Path)
		if !ok || seen[m.Path] {
			continue
		}
		seen[m.Path] = true
		syms, err := symbolAddrs(fs, pid, m, maps)
		if err != nil {
			return nil, fmt.Errorf("python %s in pid %d: %w", version, pid, err)
		}
		if syms.runtime == 0 {
			// A python3.X executable over libpython3.X.so: the runtime
			// is the library's.
			if noRuntime == nil {
				noRuntime = fmt.Errorf("python %s in pid %d: %w", version, pid, ErrNoRuntime)
			}
			continue
		}
		p := &Process{PID: pid, Version: version, Runtime: syms.runtime}
		if err := p.layout(fs, syms.version); err != nil {
			return nil, fmt.Errorf("python %s in pid %d: %w", version, pid, err)
		}
		return p, nil
	}
	if noRuntime != nil {
		return nil, noRuntime
	}
	return nil, ErrNotPython
}

// layout sets p.Off from the process's _Py_DebugOffsets or the generated
// table, checking the version the interpreter states (Py_Version at
// pyVersion, 3.11 on) against the one its file name gave.
func (p *Process) layout(fs procfs.FS, pyVersion uint64) error {
	mem, err := os.Open(filepath.Join(fs.Root, strconv.Itoa(p.PID), "mem"))
	if err != nil {
		return err
	}
	defer mem.Close()
	if layout, ok := debugLayouts[p.Version]; ok {
		b := make([]byte, debugSize(layout))
		if _, err := mem.ReadAt(b, int64(p.Runtime)); err != nil {
			return fmt.Errorf("read _Py_DebugOffsets: %w", err)
		}
		off, hex, err := parseDebugOffsets(b, p.Version)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		p.Off, p.Patch, p.Layout = off, hexVersionString(hex), "read from its _Py_DebugOffsets"
		return nil
	}
	off, ok := offsets[p.Version]
	if !ok {
		return fmt.Errorf("%w: no layout known for %s (known: 3.10 to 3.14)", ErrUnsupported, p.Version)
	}
	if pyVersion != 0 {
		b := make([]byte, 8)
		if _, err := mem.ReadAt(b, int64(pyVersion)); err != nil {
			return fmt.Errorf("read Py_Version: %w", err)
		}
		hex := binary.LittleEndian.Uint64(b)
		p.Patch = hexVersionString(hex)
		if !strings.HasPrefix(p.Patch, p.Version+".") {
			return fmt.Errorf("%w: Py_Version says %s in a python%s", ErrUnsupported, p.Patch, p.Version)
		}
	}
	p.Off, p.Layout = off, "generated from the "+p.Version+" headers"
	return nil
}

// hexVersionString renders PY_VERSION_HEX's major.minor.micro.
func hexVersionString(hex uint64) string {
	return fmt.Sprintf("%d.%d.%d", hex>>24&0xff, hex>>16&0xff, hex>>8&0xff)
}

type pySymbols struct{ runtime, version uint64 }

// symbolAddrs locates _PyRuntime and Py_Version in the process: their
// symbol values (or the .PyRuntime section's address, 3.13 on), moved by
// the load bias of the object when it is position-independent.
func symbolAddrs(fs procfs.FS, pid int, m procfs.Mapping, maps []procfs.Mapping) (pySymbols, error) {
	var out pySymbols
	file, err := elfx.OpenMapping(fs, pid, m)
	if err != nil {
		return out, err
	}
	defer file.Close()
	f, err := elfx.Open(file)
	if err != nil {
		return out, fmt.Errorf("read elf %s: %w", m.Path, err)
	}
	for _, load := range []func(*elf.File) ([]elf.Symbol, error){elfx.DynamicSymbols, elfx.Symbols} {
		syms, _ := load(f)
		for _, s := range syms {
			switch s.Name {
			case "_PyRuntime":
				out.runtime = s.Value
			case "Py_Version":
				out.version = s.Value
			}
		}
		if out.runtime != 0 {
			break
		}
	}
	if out.runtime == 0 {
		if sec := f.Section(".PyRuntime"); sec != nil {
			out.runtime = sec.Addr
		}
	}
	if out.runtime == 0 || f.Type == elf.ET_EXEC {
		return out, nil
	}
	// Position-independent: the mapping of file offset 0 sits at the
	// first PT_LOAD's page-aligned vaddr plus the bias.
	var first *elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			first = p
			break
		}
	}
	if first == nil {
		return out, errors.New("no loadable segment")
	}
	for _, mm := range maps {
		if mm.Path == m.Path && mm.Offset == 0 {
			bias := mm.Start - (first.Vaddr &^ (first.Align - 1))
			out.runtime += bias
			if out.version != 0 {
				out.version += bias
			}
			return out, nil
		}
	}
	return out, errors.New("its first segment is not mapped")
}

// Reader reads code objects from processes' memory, caching each by
// address: a code object does not change while its function lives.
type Reader struct {
	fs    procfs.FS
	procs map[int]*Process
	mem   map[int]*os.File
	code  map[codeKey]*codeInfo
}

type codeKey struct {
	pid  int
	addr uint64
}

// codeInfo is what one code object names: its frame less the line, and
// the line of each instruction.
type codeInfo struct {
	frame model.Frame
	first uint32 // co_firstlineno: the def line
	lines []lineRange
}

// maxCode bounds the code cache; past it the cache starts over.
const maxCode = 1 << 16

// maxLineTable bounds a line table read from a process.
const maxLineTable = 1 << 20

// NewReader returns a Reader over fs.
func NewReader(fs procfs.FS) *Reader {
	return &Reader{fs: fs, procs: map[int]*Process{}, mem: map[int]*os.File{}, code: map[codeKey]*codeInfo{}}
}

// Add tells the reader how to read pid.
func (r *Reader) Add(p *Process) { r.procs[p.PID] = p }

// Forget drops what is known about pid.
func (r *Reader) Forget(pid int) {
	delete(r.procs, pid)
	if f := r.mem[pid]; f != nil {
		f.Close()
		delete(r.mem, pid)
	}
	for k := range r.code {
		if k.pid == pid {
			delete(r.code, k)
		}
	}
}

// Frames turns code object addresses (innermost first) and the byte
// offsets of their frames' instructions into frames with their lines.
func (r *Reader) Frames(pid int, codes []uint64, lasti []uint32) []model.Frame {
	p := r.procs[pid]
	if p == nil {
		return nil
	}
	out := make([]model.Frame, 0, len(codes))
	for i, c := range codes {
		info := r.info(p, c)
		f := info.frame
		if i < len(lasti) {
			f.Offset = uint64(lasti[i])
			f.Line = int(lineAt(info.lines, lasti[i]))
		}
		if f.Line == 0 {
			f.Line = int(info.first) // not started, or no table: its def line
		}
		out = append(out, f)
	}
	return out
}

func (r *Reader) info(p *Process, code uint64) *codeInfo {
	k := codeKey{p.PID, code}
	if c, ok := r.code[k]; ok {
		return c
	}
	c := &codeInfo{frame: model.Frame{Addr: code, Kind: model.FrameInterpreter}}
	if name, err := r.str(p, r.ptr(p, code+uint64(p.Off.CodeQualname))); err == nil {
		c.frame.Function = name
	}
	if file, err := r.str(p, r.ptr(p, code+uint64(p.Off.CodeFilename))); err == nil {
		c.frame.Path = file
		c.frame.Module = filepath.Base(file)
	}
	var first int32
	if b, err := r.read(p, code+uint64(p.Off.CodeFirstLineno), 4); err == nil {
		first = int32(binary.LittleEndian.Uint32(b))
	}
	if first > 0 {
		c.first = uint32(first)
	}
	if table, err := r.bytes(p, r.ptr(p, code+uint64(p.Off.CodeLinetable))); err == nil {
		c.lines = lineRanges(p.Off.Lines, table, first)
	}
	if len(r.code) >= maxCode {
		clear(r.code)
	}
	r.code[k] = c
	return c
}

// bytes reads a bytes object's contents.
func (r *Reader) bytes(p *Process, obj uint64) ([]byte, error) {
	if obj == 0 {
		return nil, errors.New("null bytes")
	}
	b, err := r.read(p, obj+uint64(p.Off.BytesSize), 8)
	if err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxLineTable {
		return nil, fmt.Errorf("bytes object of %d bytes", n)
	}
	return r.read(p, obj+uint64(p.Off.BytesData), int(n))
}

func (r *Reader) read(p *Process, addr uint64, n int) ([]byte, error) {
	f := r.mem[p.PID]
	if f == nil {
		var err error
		if f, err = os.Open(filepath.Join(r.fs.Root, strconv.Itoa(p.PID), "mem")); err != nil {
			return nil, err
		}
		r.mem[p.PID] = f
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, int64(addr)); err != nil {
		return nil, err
	}
	return b, nil
}

func (r *Reader) ptr(p *Process, addr uint64) uint64 {
	b, err := r.read(p, addr, 8)
	if err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// maxName bounds a name or path read from a process.
const maxName = 4096

// str reads a str object. Names and file names are compact strings: their
// characters follow the header, one, two or four bytes each (PEP 393).
func (r *Reader) str(p *Process, obj uint64) (string, error) {
	if obj == 0 {
		return "", errors.New("null string")
	}
	hdr, err := r.read(p, obj, int(p.Off.ASCIIData))
	if err != nil {
		return "", err
	}
	length := binary.LittleEndian.Uint64(hdr[p.Off.UnicodeLength:])
	state := binary.LittleEndian.Uint32(hdr[p.Off.UnicodeState:])
	// PyASCIIObject.state: interned:2, kind:3, compact:1, ascii:1.
	kind := int(state>>2) & 7
	const compact, ascii = 1 << 5, 1 << 6
	if length > maxName || state&compact == 0 || (kind != 1 && kind != 2 && kind != 4) {
		return "", errors.New("not a compact string of sane length")
	}
	if state&ascii != 0 {
		b, err := r.read(p, obj+uint64(p.Off.ASCIIData), int(length))
		return string(b), err
	}
	b, err := r.read(p, obj+uint64(p.Off.CompactData), int(length)*kind)
	if err != nil {
		return "", err
	}
	runes := make([]rune, length)
	for i := range runes {
		switch kind {
		case 1:
			runes[i] = rune(b[i])
		case 2:
			runes[i] = rune(binary.LittleEndian.Uint16(b[2*i:]))
		case 4:
			runes[i] = rune(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}
	return string(runes), nil
}
