// Package cpython finds CPython's interpreter state in a traced process
// and turns the code objects the kernel side collected into Python frames.
//
// The kernel side walks from _PyRuntime to the current thread's frame chain
// and keeps each frame's code object pointer; code objects live as long as
// their functions, so names and files are read from the process afterwards.
package cpython

//go:generate go run ./internal/genoffsets -out zoffsets.go

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/snagtrace/snag/internal/elfx"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/runtimes"
)

// Offsets are the struct field offsets of one CPython version.
type Offsets struct {
	InterpretersHead, ThreadsHead, TstateNext, TstateThreadID, TstateCframe uint32
	CframeCurrentFrame, FrameCode, FramePrevious, FrameIsEntry              uint32
	CodeFilename, CodeQualname, CodeFirstLineno                             uint32
	UnicodeLength, UnicodeState, ASCIIData, CompactData                     uint32
}

// Process is a CPython process snag can walk.
type Process struct {
	PID     int
	Version string
	Runtime uint64 // address of _PyRuntime
	Off     Offsets
}

// ErrNotPython marks a process with no supported interpreter mapped.
var ErrNotPython = errors.New("no supported CPython mapped")

// Detect finds the interpreter mapped into pid: python3.X itself or
// libpython3.X.so, and where its _PyRuntime is.
func Detect(fs procfs.FS, pid int) (*Process, error) {
	maps, err := fs.Maps(pid)
	if err != nil {
		return nil, err
	}
	for _, m := range maps {
		version, ok := runtimes.PythonObject(m.Path)
		if !ok {
			continue
		}
		off, ok := offsets[version]
		if !ok {
			return nil, fmt.Errorf("python %s in pid %d: %w (supported: 3.11)", version, pid, ErrNotPython)
		}
		runtime, err := runtimeAddr(fs, pid, m, maps)
		if err != nil {
			return nil, fmt.Errorf("python %s in pid %d: %w", version, pid, err)
		}
		return &Process{PID: pid, Version: version, Runtime: runtime, Off: off}, nil
	}
	return nil, ErrNotPython
}

// runtimeAddr locates _PyRuntime: its symbol value, moved by the load bias
// of the object when it is position-independent.
func runtimeAddr(fs procfs.FS, pid int, m procfs.Mapping, maps []procfs.Mapping) (uint64, error) {
	file, err := elfx.OpenMapping(fs, pid, m)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	f, err := elfx.Open(file)
	if err != nil {
		return 0, fmt.Errorf("read elf %s: %w", m.Path, err)
	}
	var value uint64
	for _, load := range []func(*elf.File) ([]elf.Symbol, error){elfx.DynamicSymbols, elfx.Symbols} {
		syms, _ := load(f)
		for _, s := range syms {
			if s.Name == "_PyRuntime" {
				value = s.Value
			}
		}
		if value != 0 {
			break
		}
	}
	if value == 0 {
		return 0, errors.New("no _PyRuntime symbol")
	}
	if f.Type == elf.ET_EXEC {
		return value, nil
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
		return 0, errors.New("no loadable segment")
	}
	for _, mm := range maps {
		if mm.Path == m.Path && mm.Offset == 0 {
			return mm.Start - (first.Vaddr &^ (first.Align - 1)) + value, nil
		}
	}
	return 0, errors.New("its first segment is not mapped")
}

// Reader reads code objects from processes' memory, caching each by
// address: a code object does not change while its function lives.
type Reader struct {
	fs    procfs.FS
	procs map[int]*Process
	mem   map[int]*os.File
	code  map[codeKey]model.Frame
}

type codeKey struct {
	pid  int
	addr uint64
}

// maxCode bounds the code cache; past it the cache starts over.
const maxCode = 1 << 16

// NewReader returns a Reader over fs.
func NewReader(fs procfs.FS) *Reader {
	return &Reader{fs: fs, procs: map[int]*Process{}, mem: map[int]*os.File{}, code: map[codeKey]model.Frame{}}
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

// Frames turns code object addresses (innermost first) into frames.
func (r *Reader) Frames(pid int, codes []uint64) []model.Frame {
	p := r.procs[pid]
	if p == nil {
		return nil
	}
	out := make([]model.Frame, 0, len(codes))
	for _, c := range codes {
		out = append(out, r.frame(p, c))
	}
	return out
}

func (r *Reader) frame(p *Process, code uint64) model.Frame {
	k := codeKey{p.PID, code}
	if f, ok := r.code[k]; ok {
		return f
	}
	f := model.Frame{Addr: code, Kind: model.FrameInterpreter}
	if name, err := r.str(p, r.ptr(p, code+uint64(p.Off.CodeQualname))); err == nil {
		f.Function = name
	}
	if file, err := r.str(p, r.ptr(p, code+uint64(p.Off.CodeFilename))); err == nil {
		f.Path = file
		f.Module = filepath.Base(file)
	}
	if line, err := r.read(p, code+uint64(p.Off.CodeFirstLineno), 4); err == nil {
		f.Offset = uint64(binary.LittleEndian.Uint32(line)) // the function's first line
	}
	if len(r.code) >= maxCode {
		clear(r.code)
	}
	r.code[k] = f
	return f
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
