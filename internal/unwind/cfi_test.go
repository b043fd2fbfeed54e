package unwind

import (
	"encoding/binary"
	"testing"
)

// ehBuilder assembles an .eh_frame section loaded at addr: one CIE with
// augmentation "zR" (FDE pointers pcrel|sdata4) and the FDEs added to it.
type ehBuilder struct {
	addr uint64
	b    []byte
}

func uleb(v uint64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, c|0x80)
			continue
		}
		return append(out, c)
	}
}

func sleb(v int64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

func (e *ehBuilder) entry(body []byte) int {
	off := len(e.b)
	for (len(body)+4)%8 != 0 {
		body = append(body, cfaNop)
	}
	e.b = binary.LittleEndian.AppendUint32(e.b, uint32(len(body)))
	e.b = append(e.b, body...)
	return off
}

// cie adds a CIE with code alignment 1, data alignment dataAlign and the
// return address in raReg.
func (e *ehBuilder) cie(dataAlign int64, raReg uint64, initial []byte) int {
	body := []byte{0, 0, 0, 0, 1, 'z', 'R', 0}
	body = append(body, uleb(1)...)
	body = append(body, sleb(dataAlign)...)
	body = append(body, uleb(raReg)...)
	body = append(body, uleb(1)...)
	body = append(body, peSdata4|pePcrel)
	body = append(body, initial...)
	return e.entry(body)
}

func (e *ehBuilder) fde(cieOff int, start, length uint64, instr []byte) int {
	off := len(e.b)
	idPos := off + 4
	body := binary.LittleEndian.AppendUint32(nil, uint32(idPos-cieOff))
	startPos := uint64(idPos + 4)
	body = binary.LittleEndian.AppendUint32(body, uint32(int32(int64(start)-int64(e.addr+startPos))))
	body = binary.LittleEndian.AppendUint32(body, uint32(length))
	body = append(body, 0) // augmentation length
	body = append(body, instr...)
	return e.entry(body)
}

func (e *ehBuilder) table() *table {
	data := append(append([]byte{}, e.b...), 0, 0, 0, 0)
	return newTable(8, section{data: data, addr: e.addr}, section{}, section{})
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func op(o byte, args ...[]byte) []byte { return cat(append([][]byte{{o}}, args...)...) }

// amd64Function is the CFI GCC emits for "push rbp; push rbx; sub rsp,8;
// … ; add rsp,8; pop rbx; pop rbp; ret" with a remember/restore around an
// early return at 0x20.
func amd64Function() []byte {
	return cat(
		[]byte{cfaAdvanceLoc | 1}, op(cfaDefCFAOffset, uleb(16)), []byte{cfaOffset | 6}, uleb(2),
		[]byte{cfaAdvanceLoc | 1}, op(cfaDefCFAOffset, uleb(24)), []byte{cfaOffset | 3}, uleb(3),
		[]byte{cfaAdvanceLoc | 4}, op(cfaDefCFAOffset, uleb(32)),
		[]byte{cfaAdvanceLoc | 0x10}, op(cfaRememberState), op(cfaDefCFAOffset, uleb(8)), []byte{cfaRestore | 6},
		[]byte{cfaAdvanceLoc | 1}, op(cfaRestoreState),
	)
}

func TestRowAt(t *testing.T) {
	e := &ehBuilder{addr: 0x10000}
	// x86-64 CIE: CFA = rsp+8, RA at CFA-8.
	c := e.cie(-8, 16, cat(op(cfaDefCFA, uleb(7), uleb(8)), []byte{cfaOffset | 16}, uleb(1)))
	e.fde(c, 0x401000, 0x40, amd64Function())
	// PLT: CFA computed by glibc's expression.
	plt := []byte{0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22}
	e.fde(c, 0x400020, 0x20, cat(op(cfaDefCFAExpression, uleb(uint64(len(plt)))), plt))
	// _start: RA undefined marks the outermost frame.
	e.fde(c, 0x400100, 0x10, op(cfaUndefined, uleb(16)))
	tab := e.table()

	tests := []struct {
		pc        uint64
		cfaOff    int64
		rbp       rule
		raKind    ruleKind
		expr      bool
		wantNoFDE bool
	}{
		{pc: 0x401000, cfaOff: 8, raKind: ruleOffset},
		{pc: 0x401001, cfaOff: 16, rbp: rule{kind: ruleOffset, off: -16}, raKind: ruleOffset},
		{pc: 0x401006, cfaOff: 32, rbp: rule{kind: ruleOffset, off: -16}, raKind: ruleOffset},
		{pc: 0x401016, cfaOff: 8, raKind: ruleOffset},                                         // after the epilogue
		{pc: 0x401017, cfaOff: 32, rbp: rule{kind: ruleOffset, off: -16}, raKind: ruleOffset}, // restored state
		{pc: 0x40103f, cfaOff: 32, rbp: rule{kind: ruleOffset, off: -16}, raKind: ruleOffset},
		{pc: 0x400025, expr: true, raKind: ruleOffset},
		{pc: 0x400105, cfaOff: 8, raKind: ruleUndefined},
		{pc: 0x401040, wantNoFDE: true},
		{pc: 0x3fffff, wantNoFDE: true},
	}
	for _, tt := range tests {
		f, err := tab.find(tt.pc)
		if tt.wantNoFDE {
			if err == nil {
				t.Errorf("pc %#x: found fde [%#x,%#x), want none", tt.pc, f.start, f.end)
			}
			continue
		}
		if err != nil {
			t.Fatalf("pc %#x: %v", tt.pc, err)
		}
		r, err := rowAt(f, tt.pc)
		if err != nil {
			t.Fatalf("pc %#x: %v", tt.pc, err)
		}
		if (r.cfaExpr != nil) != tt.expr || (!tt.expr && (r.cfaReg != 7 || r.cfaOff != tt.cfaOff)) {
			t.Errorf("pc %#x: cfa r%d%+d expr=%v, want rsp%+d expr=%v", tt.pc, r.cfaReg, r.cfaOff, r.cfaExpr != nil, tt.cfaOff, tt.expr)
		}
		if r.regs[6].kind != tt.rbp.kind || r.regs[6].off != tt.rbp.off {
			t.Errorf("pc %#x: rbp rule %+v, want %+v", tt.pc, r.regs[6], tt.rbp)
		}
		if r.regs[16].kind != tt.raKind {
			t.Errorf("pc %#x: ra rule %+v, want kind %d", tt.pc, r.regs[16], tt.raKind)
		}
	}
}

func TestEvalExprPLT(t *testing.T) {
	plt := []byte{0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22}
	tests := []struct{ rip, want uint64 }{
		{0x400020, 0x7ffc1008}, // first push: CFA = rsp+8
		{0x40002a, 0x7ffc1008},
		{0x40002b, 0x7ffc1010}, // after pushq in the PLT0 path: one more word
		{0x40002f, 0x7ffc1010},
	}
	for _, tt := range tests {
		got, err := evalExpr(plt, func(reg uint64) (uint64, bool) {
			switch reg {
			case 7:
				return 0x7ffc1000, true
			case 16:
				return tt.rip, true
			}
			return 0, false
		})
		if err != nil || got != tt.want {
			t.Errorf("rip %#x: cfa %#x, %v; want %#x", tt.rip, got, err, tt.want)
		}
	}
	// A dereference is not in the accepted subset.
	if _, err := evalExpr([]byte{0x77, 0, 0x06}, func(uint64) (uint64, bool) { return 1, true }); err == nil {
		t.Error("DW_OP_deref accepted")
	}
}

// TestStepARM64 unwinds a constructed arm64 stack: a leaf with no frame
// (RA still in x30), then a function that saved x29/x30 at its CFA-16.
func TestStepARM64(t *testing.T) {
	u := &Unwinder{arch: arches["arm64"], ok: true}
	const sp = 0x7fff0000
	stack := make([]byte, 64)
	binary.LittleEndian.PutUint64(stack[16:], 0x7fff0040)            // saved x29 at CFA-16 of frame 2
	binary.LittleEndian.PutUint64(stack[24:], 0xaaaa_0000_0040_2000) // RA with a PAC in its top bits
	mem := stackCopy{base: sp, b: stack}

	var leaf row
	leaf.cfaReg, leaf.cfaOff = 31, 0
	f := frameState{pc: 0x400100, sp: sp, fp: 0x7fff0010, lr: 0x400200, lrValid: true}
	next, end, err := u.stepCFI(f, &leaf, mem)
	if err != nil || end || next.pc != 0x400200 || next.sp != sp || next.fp != 0x7fff0010 || next.lrValid {
		t.Fatalf("leaf step: %+v end=%v err=%v", next, end, err)
	}

	var caller row
	caller.cfaReg, caller.cfaOff = 29, 16
	caller.regs[29] = rule{kind: ruleOffset, off: -16}
	caller.regs[30] = rule{kind: ruleOffset, off: -8}
	caller.raSign = true
	next, end, err = u.stepCFI(next, &caller, mem)
	if err != nil || end {
		t.Fatalf("caller step: %v end=%v", err, end)
	}
	if next.pc != 0x402000 || next.sp != 0x7fff0020 || next.fp != 0x7fff0040 {
		t.Errorf("caller step: %+v", next)
	}
}

func TestStackCopyBounds(t *testing.T) {
	m := stackCopy{base: 100, b: make([]byte, 16)}
	for _, tt := range []struct {
		addr uint64
		ok   bool
	}{{100, true}, {108, true}, {109, false}, {99, false}, {116, false}, {^uint64(0) - 3, false}} {
		if _, ok := m.read(tt.addr); ok != tt.ok {
			t.Errorf("read(%d) ok=%v, want %v", tt.addr, ok, tt.ok)
		}
	}
}

func FuzzEhFrame(f *testing.F) {
	e := &ehBuilder{addr: 0x1000}
	c := e.cie(-8, 16, cat(op(cfaDefCFA, uleb(7), uleb(8)), []byte{cfaOffset | 16}, uleb(1)))
	e.fde(c, 0x2000, 0x40, amd64Function())
	f.Add(e.b)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tab := newTable(8, section{data: data, addr: 0x1000}, section{}, section{data: data, addr: 0})
		for _, pc := range []uint64{0, 0x1000, 0x2000, 0x2010, 0x2040, ^uint64(0)} {
			if fd, err := tab.find(pc); err == nil {
				_, _ = rowAt(fd, pc)
			}
		}
		for _, ref := range tab.index {
			if fd, err := tab.parseFDE(ref.sec, int(ref.off)); err == nil {
				_, _ = rowAt(fd, fd.start+1)
			}
		}
		// The section as an .eh_frame_hdr over itself.
		hdr := newTable(8, section{data: data, addr: 0x1000}, section{data: data, addr: 0x1000}, section{})
		_, _ = hdr.find(0x2000)
	})
}
