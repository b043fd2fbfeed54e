// Package nodejs names the JavaScript frames of a Node.js process without
// restarting it, from V8's own debug metadata: the v8dbg_* symbols node
// exports (field offsets, type tags, frame layout), which post-mortem
// debuggers such as llnode and mdb_v8 read too.
//
// V8's generated code keeps frame pointers, so the native unwind already
// reaches every JavaScript frame; what it cannot do is name them (JIT code
// sits in anonymous memory, interpreted frames all run in the same
// InterpreterEntryTrampoline). A JavaScript frame holds its JSFunction at
// fp+off_fp_function; from it the SharedFunctionInfo gives the name and the
// Script gives the file, and the script's line ends turn the function's
// start position into a line.
//
// Everything here is read from a process that may be hostile or simply in
// the middle of a garbage collection: every pointer is checked to be a heap
// object of the expected type before it is followed, and every length is
// bounded.
package nodejs

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/snagtrace/snag/internal/elfx"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/perfmap"
	"github.com/snagtrace/snag/internal/procfs"
)

// ErrNotNode marks a process with no node binary or libnode mapped.
var ErrNotNode = errors.New("no node binary or libnode mapped")

// ErrNoMetadata marks a node whose binary lacks V8's debug metadata (a
// build without v8_postmortem_support, or a stripped dynamic symbol
// table): its JavaScript frames can be named only from a perf map.
var ErrNoMetadata = errors.New("no v8dbg_* metadata")

// Metadata is what snag needs of V8's post-mortem metadata: offsets of
// object fields (from the object's untagged start), frame slots (from the
// frame pointer), type tags and tagging constants.
type Metadata struct {
	FPFunction, FPContext int64

	HeapObjectMap, MapInstanceType                 uint64
	JSFunctionShared                               uint64
	SFINameOrScopeInfo, SFIScriptOrDebugInfo       uint64
	ScriptName, ScriptSource, ScriptLineEnds       uint64
	StringLength, SeqOneByteChars, SeqTwoByteChars uint64
	ConsFirst, ConsSecond, ThinActual              uint64
	SlicedParent, SlicedOffset                     uint64
	FixedArrayLength, FixedArrayData               uint64
	ScopeInfoFirstVars, ScopeInfoNContextLocals    uint64

	HeapObjectTag, HeapObjectTagMask, SmiTagMask, SmiShift uint64

	FirstNonstringType, StringRepresentationMask, StringEncodingMask uint16
	SeqStringTag, ConsStringTag, ThinStringTag, SlicedStringTag      uint16
	OneByteStringTag                                                 uint16
	TypeSFI, TypeScopeInfo, TypeScript, TypeFixedArray               uint16
}

// field binds one v8dbg symbol to where its value goes.
type field struct {
	sym string
	set func(m *Metadata, v int64)
}

func u64(p func(*Metadata) *uint64) func(*Metadata, int64) {
	return func(m *Metadata, v int64) { *p(m) = uint64(v) }
}

func u16(p func(*Metadata) *uint16) func(*Metadata, int64) {
	return func(m *Metadata, v int64) { *p(m) = uint16(v) }
}

// fields are every symbol Metadata needs; a node without one of them is
// not read (its layout would be a guess).
var fields = []field{
	{"off_fp_function", func(m *Metadata, v int64) { m.FPFunction = v }},
	{"off_fp_context", func(m *Metadata, v int64) { m.FPContext = v }},
	{"class_HeapObject__map__Map", u64(func(m *Metadata) *uint64 { return &m.HeapObjectMap })},
	{"class_Map__instance_type__uint16_t", u64(func(m *Metadata) *uint64 { return &m.MapInstanceType })},
	{"class_JSFunction__shared__SharedFunctionInfo", u64(func(m *Metadata) *uint64 { return &m.JSFunctionShared })},
	{"class_SharedFunctionInfo__name_or_scope_info__Object", u64(func(m *Metadata) *uint64 { return &m.SFINameOrScopeInfo })},
	{"class_SharedFunctionInfo__script_or_debug_info__HeapObject", u64(func(m *Metadata) *uint64 { return &m.SFIScriptOrDebugInfo })},
	{"class_Script__name__Object", u64(func(m *Metadata) *uint64 { return &m.ScriptName })},
	{"class_Script__source__Object", u64(func(m *Metadata) *uint64 { return &m.ScriptSource })},
	{"class_Script__line_ends__Object", u64(func(m *Metadata) *uint64 { return &m.ScriptLineEnds })},
	{"class_String__length__int32_t", u64(func(m *Metadata) *uint64 { return &m.StringLength })},
	{"class_SeqOneByteString__chars__char", u64(func(m *Metadata) *uint64 { return &m.SeqOneByteChars })},
	{"class_SeqTwoByteString__chars__char", u64(func(m *Metadata) *uint64 { return &m.SeqTwoByteChars })},
	{"class_ConsString__first__String", u64(func(m *Metadata) *uint64 { return &m.ConsFirst })},
	{"class_ConsString__second__String", u64(func(m *Metadata) *uint64 { return &m.ConsSecond })},
	{"class_ThinString__actual__String", u64(func(m *Metadata) *uint64 { return &m.ThinActual })},
	{"class_SlicedString__parent__String", u64(func(m *Metadata) *uint64 { return &m.SlicedParent })},
	{"class_SlicedString__offset__SMI", u64(func(m *Metadata) *uint64 { return &m.SlicedOffset })},
	{"class_FixedArrayBase__length__SMI", u64(func(m *Metadata) *uint64 { return &m.FixedArrayLength })},
	{"class_FixedArray__data__uintptr_t", u64(func(m *Metadata) *uint64 { return &m.FixedArrayData })},
	{"scopeinfo_idx_first_vars", u64(func(m *Metadata) *uint64 { return &m.ScopeInfoFirstVars })},
	{"scopeinfo_idx_ncontextlocals", u64(func(m *Metadata) *uint64 { return &m.ScopeInfoNContextLocals })},
	{"HeapObjectTag", u64(func(m *Metadata) *uint64 { return &m.HeapObjectTag })},
	{"HeapObjectTagMask", u64(func(m *Metadata) *uint64 { return &m.HeapObjectTagMask })},
	{"SmiTagMask", u64(func(m *Metadata) *uint64 { return &m.SmiTagMask })},
	{"SmiShiftSize", func(m *Metadata, v int64) { m.SmiShift = uint64(v) + 1 }}, // plus the tag bit
	{"FirstNonstringType", u16(func(m *Metadata) *uint16 { return &m.FirstNonstringType })},
	{"StringRepresentationMask", u16(func(m *Metadata) *uint16 { return &m.StringRepresentationMask })},
	{"StringEncodingMask", u16(func(m *Metadata) *uint16 { return &m.StringEncodingMask })},
	{"SeqStringTag", u16(func(m *Metadata) *uint16 { return &m.SeqStringTag })},
	{"ConsStringTag", u16(func(m *Metadata) *uint16 { return &m.ConsStringTag })},
	{"ThinStringTag", u16(func(m *Metadata) *uint16 { return &m.ThinStringTag })},
	{"SlicedStringTag", u16(func(m *Metadata) *uint16 { return &m.SlicedStringTag })},
	{"OneByteStringTag", u16(func(m *Metadata) *uint16 { return &m.OneByteStringTag })},
	{"type_SharedFunctionInfo__SHARED_FUNCTION_INFO_TYPE", u16(func(m *Metadata) *uint16 { return &m.TypeSFI })},
	{"type_ScopeInfo__SCOPE_INFO_TYPE", u16(func(m *Metadata) *uint16 { return &m.TypeScopeInfo })},
	{"type_Script__SCRIPT_TYPE", u16(func(m *Metadata) *uint16 { return &m.TypeScript })},
	{"type_FixedArray__FIXED_ARRAY_TYPE", u16(func(m *Metadata) *uint16 { return &m.TypeFixedArray })},
}

// ReadMetadata reads V8's metadata from a node executable or libnode. Each
// v8dbg_ symbol is a 4-byte int in the file's data (or .bss, for zeros).
func ReadMetadata(f *elf.File) (*Metadata, error) {
	syms, err := elfx.DynamicSymbols(f)
	if err != nil || !hasV8dbg(syms) {
		// Some builds export them only in .symtab.
		if s, serr := elfx.Symbols(f); serr == nil && hasV8dbg(s) {
			syms, err = s, nil
		}
	}
	if err != nil && len(syms) == 0 {
		return nil, fmt.Errorf("read symbols: %w", err)
	}
	values := map[string]elf.Symbol{}
	for _, s := range syms {
		if name, ok := strings.CutPrefix(s.Name, "v8dbg_"); ok {
			values[name] = s
		}
	}
	if len(values) == 0 {
		return nil, ErrNoMetadata
	}
	m := &Metadata{}
	var missing []string
	for _, fl := range fields {
		s, ok := values[fl.sym]
		if !ok {
			missing = append(missing, "v8dbg_"+fl.sym)
			continue
		}
		v, err := symbolInt(f, s)
		if err != nil {
			return nil, fmt.Errorf("v8dbg_%s: %w", fl.sym, err)
		}
		fl.set(m, v)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %d of %d needed symbols missing (%s)", ErrNoMetadata, len(missing), len(fields), strings.Join(missing[:min(3, len(missing))], ", "))
	}
	if m.SmiShift != 32 {
		// Pointer compression (31-bit Smis, 4-byte tagged fields) is a
		// different layout; node does not enable it by default.
		return nil, fmt.Errorf("tagged values with %d-bit Smis (pointer compression) are not supported", 64-m.SmiShift)
	}
	return m, nil
}

func hasV8dbg(syms []elf.Symbol) bool {
	return slices.ContainsFunc(syms, func(s elf.Symbol) bool { return strings.HasPrefix(s.Name, "v8dbg_") })
}

// symbolInt reads the int a data symbol holds.
func symbolInt(f *elf.File, s elf.Symbol) (int64, error) {
	for _, sec := range f.Sections {
		if sec.Flags&elf.SHF_ALLOC == 0 || s.Value < sec.Addr || s.Value+4 > sec.Addr+sec.Size {
			continue
		}
		if sec.Type == elf.SHT_NOBITS {
			return 0, nil
		}
		b := make([]byte, 4)
		if _, err := sec.ReadAt(b, int64(s.Value-sec.Addr)); err != nil {
			return 0, err
		}
		return int64(int32(f.ByteOrder.Uint32(b))), nil
	}
	return 0, fmt.Errorf("at %#x in no section", s.Value)
}

// NodeObject reports whether a mapped file is node's executable or
// libnode, whose symbols carry the metadata.
func NodeObject(p string) bool {
	base := path.Base(strings.TrimSuffix(p, " (deleted)"))
	return base == "node" || base == "nodejs" || strings.HasPrefix(base, "libnode.so")
}

// Process is a node process whose frames can be read.
type Process struct {
	PID    int
	Object string // the node binary or libnode the metadata came from
	Meta   *Metadata
}

// Detect finds node in pid and reads its metadata.
func Detect(fs procfs.FS, pid int) (*Process, error) {
	maps, err := fs.Maps(pid)
	if err != nil {
		return nil, err
	}
	var libnode, exe *procfs.Mapping
	for i, m := range maps {
		if !NodeObject(m.Path) {
			continue
		}
		if strings.HasPrefix(path.Base(m.Path), "libnode") {
			if libnode == nil {
				libnode = &maps[i]
			}
		} else if exe == nil {
			exe = &maps[i]
		}
	}
	// libnode carries V8 when node is built shared; the executable is
	// then a small launcher.
	var errs []error
	for _, m := range []*procfs.Mapping{libnode, exe} {
		if m == nil {
			continue
		}
		meta, err := metadataOf(fs, pid, *m)
		if err == nil {
			return &Process{PID: pid, Object: m.Path, Meta: meta}, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.Path, err))
	}
	if len(errs) == 0 {
		return nil, ErrNotNode
	}
	return nil, errors.Join(errs...)
}

func metadataOf(fs procfs.FS, pid int, m procfs.Mapping) (*Metadata, error) {
	file, err := elfx.OpenMapping(fs, pid, m)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	f, err := elfx.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read elf: %w", err)
	}
	return ReadMetadata(f)
}

// Memory reads a process's memory.
type Memory interface {
	ReadAt(p []byte, addr int64) (int, error)
}

// Reader names JavaScript frames of node processes, caching what it read
// per SharedFunctionInfo: a function's name, script and start do not
// change while it lives.
type Reader struct {
	fs    procfs.FS
	procs map[int]*Process
	mem   map[int]Memory
	sfi   map[sfiKey]jsFunc
}

type sfiKey struct {
	pid  int
	addr uint64
}

type jsFunc struct {
	name, script string
	line         int
}

// maxSFI bounds the function cache; past it the cache starts over.
const maxSFI = 1 << 16

// NewReader returns a Reader over fs.
func NewReader(fs procfs.FS) *Reader {
	return &Reader{fs: fs, procs: map[int]*Process{}, mem: map[int]Memory{}, sfi: map[sfiKey]jsFunc{}}
}

// Add tells the reader how to read p.PID.
func (r *Reader) Add(p *Process) { r.procs[p.PID] = p }

// Has reports whether pid's frames can be read.
func (r *Reader) Has(pid int) bool { return r.procs[pid] != nil }

// SetMemory reads pid's memory from m instead of /proc/PID/mem (tests).
func (r *Reader) SetMemory(pid int, m Memory) { r.mem[pid] = m }

// Forget drops what is known about pid.
func (r *Reader) Forget(pid int) {
	delete(r.procs, pid)
	if c, ok := r.mem[pid].(*os.File); ok {
		c.Close()
	}
	delete(r.mem, pid)
	for k := range r.sfi {
		if k.pid == pid {
			delete(r.sfi, k)
		}
	}
}

// Slots returns the function slot of each frame whose frame pointer is
// known (0 where it is not, or the slot does not hold a heap object). A
// stack copy of the frames, starting at address base, is read first;
// memory outside it is read from the process. The slots tell apart stacks
// whose return addresses are the same (every interpreted frame returns into
// the same trampoline).
func (r *Reader) Slots(pid int, fps []uint64, base uint64, stack []byte) []uint64 {
	p := r.procs[pid]
	if p == nil {
		return nil
	}
	out := make([]uint64, len(fps))
	for i, fp := range fps {
		if fp == 0 {
			continue
		}
		ctx, ok1 := r.word(pid, uint64(int64(fp)+p.Meta.FPContext), base, stack)
		fn, ok2 := r.word(pid, uint64(int64(fp)+p.Meta.FPFunction), base, stack)
		// A typed frame (entry, exit, stub, …) holds a Smi marker where a
		// JavaScript frame holds its context.
		if ok1 && ok2 && p.Meta.heapObject(ctx) && p.Meta.heapObject(fn) {
			out[i] = fn
		}
	}
	return out
}

func (r *Reader) word(pid int, addr, base uint64, stack []byte) (uint64, bool) {
	if addr >= base && addr-base <= uint64(len(stack)) && uint64(len(stack))-(addr-base) >= 8 {
		return binary.LittleEndian.Uint64(stack[addr-base:]), true
	}
	b, err := r.read(pid, addr, 8)
	if err != nil {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b), true
}

// Name rewrites the frames whose function slot (from Slots) holds a
// JavaScript function as interpreter frames: the function's name, its
// script as Path and its module name, and the line it starts on. Frames
// whose slot is 0 or does not lead to a function are left as they are.
func (r *Reader) Name(pid int, frames []model.Frame, slots []uint64) {
	p := r.procs[pid]
	if p == nil {
		return
	}
	for i := range min(len(frames), len(slots)) {
		if slots[i] == 0 || !jsCandidate(frames[i]) {
			continue
		}
		fn, ok := r.function(p, slots[i])
		if !ok {
			continue
		}
		f := model.Frame{Addr: frames[i].Addr, Function: fn.name, Kind: model.FrameInterpreter, Line: fn.line}
		if fn.script != "" {
			f.Path, f.Module = fn.script, perfmap.ScriptModule(fn.script)
		} else {
			// V8's own builtins written in JavaScript or Torque have
			// no script: keep the object their code lives in.
			f.Module, f.Path, f.BuildID = frames[i].Module, frames[i].Path, frames[i].BuildID
		}
		frames[i] = f
	}
}

// jsCandidate reports whether a frame may be a JavaScript function's: code
// no mapped file names (JIT), or one of V8's builtins, the interpreter's
// trampoline among them. A perf map may have named it already.
func jsCandidate(f model.Frame) bool {
	switch {
	case f.Kind == model.FrameInterpreter:
		return false
	case f.Function == "":
		return true
	}
	return strings.HasPrefix(f.Function, "Builtins_") || f.Module == "[jit]"
}

// function reads the JSFunction at tagged pointer fn.
func (r *Reader) function(p *Process, fn uint64) (jsFunc, bool) {
	m := p.Meta
	sfi, ok := r.object(p, fn, m.JSFunctionShared, m.TypeSFI)
	if !ok {
		return jsFunc{}, false
	}
	k := sfiKey{p.PID, sfi}
	if f, ok := r.sfi[k]; ok {
		return f, true
	}
	var f jsFunc
	start := -1
	nos, nosType, err := r.field(p, sfi, m.SFINameOrScopeInfo)
	switch {
	case err != nil:
	case nosType == m.TypeScopeInfo:
		f.name, start = r.scopeInfo(p, nos)
	case nosType < m.FirstNonstringType:
		f.name, _ = r.str(p, nos, maxName)
	}
	if f.name == "" {
		f.name = "(anonymous)"
	}
	if script, ok := r.object(p, sfi, m.SFIScriptOrDebugInfo, m.TypeScript); ok {
		if name, typ, err := r.field(p, script, m.ScriptName); err == nil && typ < m.FirstNonstringType {
			f.script, _ = r.str(p, name, maxName)
		}
		if start >= 0 {
			f.line = r.line(p, script, start)
		}
	}
	if len(r.sfi) >= maxSFI {
		clear(r.sfi)
	}
	r.sfi[k] = f
	return f, true
}

// maxName bounds a function or script name read from a process.
const maxName = 1024

// scopeInfoSlots is how many slots of a ScopeInfo are searched for the
// function's name and position. Its layout past the context locals (saved
// class variable, function variable, inferred name, outer scope, position
// info) depends on flags whose bits change between V8 versions and have no
// metadata, so, as the OpenTelemetry profiler does, the first string there
// is taken as the name and the first pair of ascending Smis as the start
// and end position.
const scopeInfoSlots = 16

// scopeInfo reads a function's name and start position from its ScopeInfo
// (start -1 when not found).
func (r *Reader) scopeInfo(p *Process, si uint64) (name string, start int) {
	m := p.Meta
	b, err := r.read(p.PID, si-m.HeapObjectTag+m.HeapObjectMap+8, scopeInfoSlots*8)
	if err != nil {
		return "", -1
	}
	slot := func(i uint64) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
	if m.ScopeInfoNContextLocals >= scopeInfoSlots {
		return "", -1
	}
	nlocals, ok := m.smi(slot(m.ScopeInfoNContextLocals))
	if !ok || nlocals < 0 || nlocals > scopeInfoSlots {
		return "", -1
	}
	prev := uint64(1) // not a Smi
	for i := m.ScopeInfoFirstVars + 2*uint64(nlocals); i < scopeInfoSlots; i++ {
		cur := slot(i)
		if name == "" && m.heapObject(cur) {
			if typ, err := r.typeOf(p, cur); err == nil && typ < m.FirstNonstringType {
				name, _ = r.str(p, cur, maxName)
			}
		}
		a, ok1 := m.smi(prev)
		z, ok2 := m.smi(cur)
		if ok1 && ok2 && a >= 0 && a < z {
			return name, int(a)
		}
		prev = cur
	}
	return name, -1
}

// maxSource bounds how much of a script's source is scanned for line ends
// when V8 has not computed them: a bundle can be megabytes.
const maxSource = 4 << 20

// line turns a source position into a 1-based line: from the script's line
// ends when V8 has computed them (a FixedArray of Smis, the position of each
// line's end), else by counting newlines in the source before it.
func (r *Reader) line(p *Process, script uint64, pos int) int {
	m := p.Meta
	if ends, ok := r.object(p, script, m.ScriptLineEnds, m.TypeFixedArray); ok {
		if n, ok := r.smiField(p, ends, m.FixedArrayLength); ok && n > 0 && n <= maxSource {
			b, err := r.read(p.PID, ends-m.HeapObjectTag+m.FixedArrayData, int(n)*8)
			if err == nil {
				// The first line whose end is at or after pos.
				lo, hi := 0, int(n)
				for lo < hi {
					mid := (lo + hi) / 2
					end, _ := m.smi(binary.LittleEndian.Uint64(b[8*mid:]))
					if int(end) < pos {
						lo = mid + 1
					} else {
						hi = mid
					}
				}
				return lo + 1
			}
		}
	}
	if pos > maxSource {
		return 0
	}
	src, typ, err := r.field(p, script, m.ScriptSource)
	if err != nil || typ >= m.FirstNonstringType {
		return 0
	}
	units, err := r.units(p, src, pos, 0)
	if err != nil || len(units) < pos {
		return 0
	}
	line := 1
	for _, u := range units {
		if u == '\n' {
			line++
		}
	}
	return line
}

// str reads a string of at most limit characters.
func (r *Reader) str(p *Process, s uint64, limit int) (string, error) {
	units, err := r.units(p, s, limit+1, 0)
	if err != nil {
		return "", err
	}
	if len(units) > limit {
		return "", errors.New("string too long")
	}
	out := string(utf16.Decode(units))
	for _, c := range out {
		if c < 0x20 || c == 0x7f {
			return "", errors.New("control character in name")
		}
	}
	return out, nil
}

// maxDepth bounds the nesting of cons, thin and sliced strings followed.
const maxDepth = 16

// units reads the first n UTF-16 code units (fewer if shorter) of the
// string at tagged pointer s.
func (r *Reader) units(p *Process, s uint64, n int, depth int) ([]uint16, error) {
	m := p.Meta
	if depth > maxDepth {
		return nil, errors.New("string nested too deep")
	}
	typ, err := r.typeOf(p, s)
	if err != nil {
		return nil, err
	}
	if typ >= m.FirstNonstringType {
		return nil, fmt.Errorf("type %d is not a string", typ)
	}
	lb, err := r.read(p.PID, s-m.HeapObjectTag+m.StringLength, 4)
	if err != nil {
		return nil, err
	}
	length := int(int32(binary.LittleEndian.Uint32(lb)))
	if length < 0 || length > 1<<29 {
		return nil, errors.New("string of impossible length")
	}
	n = min(n, length)
	switch typ & m.StringRepresentationMask {
	case m.SeqStringTag:
		if typ&m.StringEncodingMask == m.OneByteStringTag {
			b, err := r.read(p.PID, s-m.HeapObjectTag+m.SeqOneByteChars, n)
			if err != nil {
				return nil, err
			}
			out := make([]uint16, n)
			for i, c := range b {
				out[i] = uint16(c)
			}
			return out, nil
		}
		b, err := r.read(p.PID, s-m.HeapObjectTag+m.SeqTwoByteChars, 2*n)
		if err != nil {
			return nil, err
		}
		out := make([]uint16, n)
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return out, nil
	case m.ConsStringTag:
		first, err := r.ptrField(p, s, m.ConsFirst)
		if err != nil {
			return nil, err
		}
		out, err := r.units(p, first, n, depth+1)
		if err != nil || len(out) >= n {
			return out, err
		}
		second, err := r.ptrField(p, s, m.ConsSecond)
		if err != nil {
			return nil, err
		}
		rest, err := r.units(p, second, n-len(out), depth+1)
		return append(out, rest...), err
	case m.ThinStringTag:
		actual, err := r.ptrField(p, s, m.ThinActual)
		if err != nil {
			return nil, err
		}
		return r.units(p, actual, n, depth+1)
	case m.SlicedStringTag:
		parent, err := r.ptrField(p, s, m.SlicedParent)
		if err != nil {
			return nil, err
		}
		off, ok := r.smiField(p, s, m.SlicedOffset)
		if !ok || off < 0 || off > 1<<29 {
			return nil, errors.New("bad slice offset")
		}
		out, err := r.units(p, parent, int(off)+n, depth+1)
		if err != nil || len(out) < int(off) {
			return nil, err
		}
		return out[off:], nil
	}
	// External strings live outside V8's heap, behind a resource object
	// of the embedder's; node's own sources are such.
	return nil, fmt.Errorf("string representation %d not read", typ&m.StringRepresentationMask)
}

// object reads the tagged pointer field at off of obj and checks that it
// is a heap object of type want.
func (r *Reader) object(p *Process, obj, off uint64, want uint16) (uint64, bool) {
	v, typ, err := r.field(p, obj, off)
	return v, err == nil && typ == want
}

// field reads the tagged pointer field at off of obj, and the type of the
// heap object it points to.
func (r *Reader) field(p *Process, obj, off uint64) (uint64, uint16, error) {
	v, err := r.ptrField(p, obj, off)
	if err != nil {
		return 0, 0, err
	}
	typ, err := r.typeOf(p, v)
	return v, typ, err
}

func (r *Reader) ptrField(p *Process, obj, off uint64) (uint64, error) {
	if !p.Meta.heapObject(obj) {
		return 0, errors.New("not a heap object")
	}
	b, err := r.read(p.PID, obj-p.Meta.HeapObjectTag+off, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *Reader) smiField(p *Process, obj, off uint64) (int64, bool) {
	v, err := r.ptrField(p, obj, off)
	if err != nil {
		return 0, false
	}
	return p.Meta.smi(v)
}

// typeOf returns the instance type of the heap object at tagged pointer v.
func (r *Reader) typeOf(p *Process, v uint64) (uint16, error) {
	m := p.Meta
	mp, err := r.ptrField(p, v, m.HeapObjectMap)
	if err != nil {
		return 0, err
	}
	if !m.heapObject(mp) {
		return 0, errors.New("map is not a heap object")
	}
	b, err := r.read(p.PID, mp-m.HeapObjectTag+m.MapInstanceType, 2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (m *Metadata) heapObject(v uint64) bool {
	return v&m.HeapObjectTagMask == m.HeapObjectTag && v > 0x1000 && v < 1<<48
}

func (m *Metadata) smi(v uint64) (int64, bool) {
	if v&m.SmiTagMask != 0 {
		return 0, false
	}
	return int64(v) >> m.SmiShift, true
}

// maxRead bounds one read of a process's memory.
const maxRead = 8 * maxSource

func (r *Reader) read(pid int, addr uint64, n int) ([]byte, error) {
	if n < 0 || n > maxRead || addr >= 1<<63 {
		return nil, errors.New("read out of bounds")
	}
	mem := r.mem[pid]
	if mem == nil {
		f, err := os.Open(filepath.Join(r.fs.Root, strconv.Itoa(pid), "mem"))
		if err != nil {
			return nil, err
		}
		r.mem[pid], mem = f, f
	}
	b := make([]byte, n)
	if _, err := mem.ReadAt(b, int64(addr)); err != nil {
		return nil, err
	}
	return b, nil
}

// releaseURL is the download address node embeds for process.release, the
// one place its binary spells its own version next to its name.
var releaseURL = regexp.MustCompile(`/release/v(\d+\.\d+\.\d+)/node-v`)

// Version reads node's version ("v20.11.1") from its binary's read-only
// data, "" when it is not found.
func Version(f *elf.File) string {
	sec := f.Section(".rodata")
	if sec == nil || sec.Type == elf.SHT_NOBITS || sec.Size > 256<<20 {
		return ""
	}
	b, err := sec.Data()
	if err != nil {
		return ""
	}
	if m := releaseURL.FindSubmatch(b); m != nil {
		return "v" + string(m[1])
	}
	return ""
}

// ObjectVersion reads the version of the node object p found in.
func ObjectVersion(fs procfs.FS, pid int, object string) string {
	maps, err := fs.Maps(pid)
	if err != nil {
		return ""
	}
	for _, m := range maps {
		if m.Path != object {
			continue
		}
		file, err := elfx.OpenMapping(fs, pid, m)
		if err != nil {
			return ""
		}
		defer file.Close()
		f, err := elfx.Open(file)
		if err != nil {
			return ""
		}
		return Version(f)
	}
	return ""
}
