// Package unwind walks a user stack from a copy of its top bytes and the
// registers at the time of the copy, using the ELF call frame information
// (.eh_frame, .debug_frame) of the mapped objects, the way perf's
// --call-graph dwarf does. Where no CFI covers an address it falls back to
// following frame pointers.
package unwind

import (
	"debug/elf"
	"encoding/binary"
	"errors"

	"github.com/snagtrace/snag/internal/elfx"
	"github.com/snagtrace/snag/internal/procfs"
)

// Regs are the user registers an unwind starts from.
type Regs struct{ PC, SP, FP, LR uint64 } // LR: arm64 x30; FP: rbp on amd64, x29 on arm64

// MaxFrames bounds the length of an unwound stack.
const MaxFrames = 128

// cacheBudget bounds the CFI kept in memory. libc's .eh_frame plus its
// header is about 180 KiB, so this holds a few hundred typical objects.
const cacheBudget = 64 << 20

// archInfo names the DWARF registers an unwind uses.
type archInfo struct {
	sp, fp, ra uint64
	pc         uint64 // register number expressions use for the PC (amd64 rip); none on arm64
	lr         bool   // the return address of a leaf lives in a register (arm64 x30)
}

var arches = map[string]archInfo{
	"amd64": {sp: 7, fp: 6, ra: 16, pc: 16},
	"arm64": {sp: 31, fp: 29, ra: 30, pc: ^uint64(0), lr: true},
}

// Unwinder unwinds stacks of traced processes. It is safe for use by one
// goroutine; it caches parsed CFI per file identity with bounded memory.
type Unwinder struct {
	arch archInfo
	res  *elfx.Resolver[*table]
	ok   bool
}

// New returns an unwinder reading processes through fs, for arch "amd64" or
// "arm64". An unknown arch yields an unwinder that returns only the first PC.
func New(fs procfs.FS, arch string) *Unwinder {
	a, ok := arches[arch]
	return &Unwinder{arch: a, ok: ok, res: elfx.NewResolver(fs, cacheBudget, parseCFI)}
}

// OnError has fn hear, once per process and mapping, why a mapped file
// could not be read.
func (u *Unwinder) OnError(fn func(pid int, m procfs.Mapping, err error)) { u.res.OnError = fn }

// Forget drops per-process state when a process exits.
func (u *Unwinder) Forget(pid int) { u.res.Forget(pid) }

func parseCFI(f *elf.File) (*table, int64, error) {
	ptrSize := 8
	if f.Class == elf.ELFCLASS32 {
		ptrSize = 4
	}
	var errs []error
	sec := func(name string) section {
		b, s, err := elfx.SectionData(f, name)
		if err != nil {
			errs = append(errs, err)
		}
		if b == nil {
			return section{}
		}
		return section{data: b, addr: s.Addr}
	}
	eh, hdr, debug := sec(".eh_frame"), sec(".eh_frame_hdr"), sec(".debug_frame")
	if eh.data == nil && debug.data == nil && len(errs) > 0 {
		return nil, 0, errors.Join(errs...) // no CFI could be read: say why
	}
	t := newTable(ptrSize, eh, hdr, debug)
	return t, t.size(), nil
}

// stackCopy is the copied user memory starting at base.
type stackCopy struct {
	base uint64
	b    []byte
}

func (s stackCopy) read(addr uint64) (uint64, bool) {
	if addr < s.base || addr-s.base > uint64(len(s.b)) || uint64(len(s.b))-(addr-s.base) < 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(s.b[addr-s.base:]), true
}

var errNoRule = errors.New("no unwind rule")

// Unwind returns return addresses leaf first (PCs[0] == regs.PC) and whether
// it reached the end of the stack (false when the copy ran out or no rule
// covered an address). stack holds the bytes of user memory starting at
// regs.SP.
func (u *Unwinder) Unwind(pid int, regs Regs, stack []byte) (pcs []uint64, complete bool) {
	pcs, _, complete = u.UnwindFP(pid, regs, stack)
	return pcs, complete
}

// UnwindFP is Unwind that also returns each frame's frame pointer, the
// register's value while that frame's code ran (0 where the CFI leaves it
// unknown): JIT runtimes keep their frames' metadata at fixed offsets from
// it.
func (u *Unwinder) UnwindFP(pid int, regs Regs, stack []byte) (pcs, fps []uint64, complete bool) {
	pcs, fps = []uint64{regs.PC}, []uint64{regs.FP}
	if !u.ok {
		return pcs, fps, false
	}
	mem := stackCopy{base: regs.SP, b: stack}
	f := frameState{pc: regs.PC, sp: regs.SP, fp: regs.FP, lr: regs.LR, lrValid: u.arch.lr}
	refreshed := false
	for len(pcs) < MaxFrames {
		lookup := f.pc
		if len(pcs) > 1 {
			// A return address points after the call, possibly at the
			// next function; the call itself is one byte earlier.
			lookup--
		}
		r, err := u.row(pid, lookup, &refreshed)
		var next frameState
		var end bool
		if err == nil {
			next, end, err = u.stepCFI(f, &r, mem)
		} else {
			next, end, err = u.stepFP(f, mem)
		}
		if err != nil {
			return pcs, fps, false
		}
		if end || next.pc == 0 {
			return pcs, fps, true
		}
		// Never loop: each frame must sit higher on the stack, except an
		// arm64 leaf that has not pushed a frame (its RA is still in x30).
		if next.sp < f.sp || (next.sp == f.sp && !(f.lrValid && len(pcs) == 1)) {
			return pcs, fps, false
		}
		pcs = append(pcs, next.pc)
		fps = append(fps, next.fp)
		f = next
	}
	return pcs, fps, false
}

type frameState struct {
	pc, sp, fp, lr uint64
	lrValid        bool
}

// row finds the unwind row for addr in pid, re-reading the maps once per
// unwind when addr is in no known mapping (a library loaded since).
func (u *Unwinder) row(pid int, addr uint64, refreshed *bool) (row, error) {
	m, o, err := u.res.Lookup(pid, addr)
	if errors.Is(err, elfx.ErrNoMapping) && !*refreshed {
		*refreshed = true
		if u.res.RefreshAfterMiss(pid) {
			m, o, err = u.res.Lookup(pid, addr)
		}
	}
	if err != nil {
		return row{}, err
	}
	v, ok := o.Vaddr(m, addr)
	if !ok {
		return row{}, errNoRule
	}
	fd, err := o.Data.find(v)
	if err != nil {
		return row{}, err
	}
	r, err := rowAt(fd, v)
	if err != nil {
		return row{}, err
	}
	return r, nil
}

func (u *Unwinder) stepCFI(f frameState, r *row, mem stackCopy) (frameState, bool, error) {
	regVal := func(reg uint64) (uint64, bool) {
		switch reg {
		case u.arch.sp:
			return f.sp, true
		case u.arch.fp:
			return f.fp, true
		case u.arch.pc:
			return f.pc, true
		}
		if u.arch.lr && reg == u.arch.ra && f.lrValid {
			return f.lr, true
		}
		return 0, false
	}
	var cfa uint64
	if r.cfaExpr != nil {
		v, err := evalExpr(r.cfaExpr, regVal)
		if err != nil {
			return f, false, err
		}
		cfa = v
	} else {
		v, ok := regVal(r.cfaReg)
		if !ok {
			return f, false, errNoRule
		}
		cfa = v + uint64(r.cfaOff)
	}
	next := frameState{sp: cfa}

	ra := r.regs[u.arch.ra]
	switch ra.kind {
	case ruleUndefined:
		return f, true, nil
	case ruleOffset:
		v, ok := mem.read(cfa + uint64(ra.off))
		if !ok {
			return f, false, errNoRule
		}
		next.pc = v
	case ruleUnset, ruleSame:
		if !u.arch.lr || !f.lrValid {
			return f, false, errNoRule
		}
		next.pc = f.lr
	case ruleRegister:
		v, ok := regVal(uint64(ra.reg))
		if !ok {
			return f, false, errNoRule
		}
		next.pc = v
	default:
		return f, false, errNoRule
	}
	if r.raSign {
		next.pc = stripPAC(next.pc)
	}

	fp := r.regs[u.arch.fp]
	switch fp.kind {
	case ruleUnset, ruleSame:
		next.fp = f.fp
	case ruleOffset:
		v, ok := mem.read(cfa + uint64(fp.off))
		if !ok {
			return f, false, errNoRule
		}
		next.fp = v
	case ruleValOffset:
		next.fp = cfa + uint64(fp.off)
	case ruleRegister:
		v, ok := regVal(uint64(fp.reg))
		if !ok {
			return f, false, errNoRule
		}
		next.fp = v
	default:
		// Undefined or computed: the caller's frame pointer is unknown, which
		// only matters if a later frame needs the frame-pointer fallback.
		next.fp = 0
	}
	// The caller's x30 was clobbered by the call that got us here, unless
	// the callee saved it, in which case it is the RA just restored.
	return next, false, nil
}

// stepFP follows the frame-pointer chain: [fp] holds the caller's fp and
// [fp+8] the return address (both architectures).
func (u *Unwinder) stepFP(f frameState, mem stackCopy) (frameState, bool, error) {
	if f.fp < f.sp {
		return f, false, errNoRule
	}
	savedFP, ok1 := mem.read(f.fp)
	ra, ok2 := mem.read(f.fp + 8)
	if !ok1 || !ok2 {
		return f, false, errNoRule
	}
	if u.arch.lr {
		ra = stripPAC(ra)
	}
	return frameState{pc: ra, sp: f.fp + 16, fp: savedFP}, false, nil
}

// stripPAC removes an arm64 pointer authentication code from a return
// address: user addresses fit in 48 bits with the default VA layout.
func stripPAC(v uint64) uint64 { return v & (1<<48 - 1) }
