package unwind

import (
	"errors"
	"fmt"
)

type ruleKind uint8

const (
	ruleUnset     ruleKind = iota // not mentioned: callee-saved, value unchanged
	ruleUndefined                 // DW_CFA_undefined: no value (for the RA: outermost frame)
	ruleSame                      // DW_CFA_same_value
	ruleOffset                    // saved at CFA+off
	ruleValOffset                 // value is CFA+off
	ruleRegister                  // value is in register reg
	ruleExpr                      // saved at the address an expression computes
	ruleValExpr                   // value is an expression
)

type rule struct {
	kind ruleKind
	reg  uint16
	off  int64
	expr []byte
}

// numRegs covers the registers an unwind needs on both architectures
// (amd64: rbp 6, rsp 7, RA 16; arm64: x29, x30, sp 31). Rules for higher
// registers (vector registers) are parsed and dropped.
const numRegs = 33

// row is the unwind rule set in force at one address.
type row struct {
	cfaReg  uint64
	cfaOff  int64
	cfaExpr []byte // when not nil, the CFA is this expression's value
	regs    [numRegs]rule
	raSign  bool // arm64: the return address is signed (pointer authentication)
}

func (r *row) set(reg uint64, ru rule) {
	if reg < numRegs {
		r.regs[reg] = ru
	}
}

// DWARF call frame instructions (DWARF 5, 6.4.2; GNU extensions).
const (
	cfaAdvanceLoc       = 0x40
	cfaOffset           = 0x80
	cfaRestore          = 0xc0
	cfaNop              = 0x00
	cfaSetLoc           = 0x01
	cfaAdvanceLoc1      = 0x02
	cfaAdvanceLoc2      = 0x03
	cfaAdvanceLoc4      = 0x04
	cfaOffsetExtended   = 0x05
	cfaRestoreExtended  = 0x06
	cfaUndefined        = 0x07
	cfaSameValue        = 0x08
	cfaRegister         = 0x09
	cfaRememberState    = 0x0a
	cfaRestoreState     = 0x0b
	cfaDefCFA           = 0x0c
	cfaDefCFARegister   = 0x0d
	cfaDefCFAOffset     = 0x0e
	cfaDefCFAExpression = 0x0f
	cfaExpression       = 0x10
	cfaOffsetExtendedSF = 0x11
	cfaDefCFASF         = 0x12
	cfaDefCFAOffsetSF   = 0x13
	cfaValOffset        = 0x14
	cfaValOffsetSF      = 0x15
	cfaValExpression    = 0x16
	cfaGNUWindowSave    = 0x2d // AArch64: negate_ra_state
	cfaGNUArgsSize      = 0x2e
	cfaGNUNegOffsetExt  = 0x2f
)

var errBadCFI = errors.New("malformed cfi program")

// rowAt computes the row for pc, which lies in f: it runs the CIE's initial
// instructions, then the FDE's until the location passes pc. The work is
// bounded by the length of the two programs.
func rowAt(f *fde, pc uint64) (row, error) {
	var init row
	if err := run(f.cie, f.cie.initial, f.cie.initAddr, &init, nil, ^uint64(0), nil); err != nil {
		return row{}, fmt.Errorf("cie program: %w", err)
	}
	r := init
	loc := f.start
	if err := run(f.cie, f.instr, f.instrAddr, &r, &init, pc, &loc); err != nil {
		return row{}, fmt.Errorf("fde program: %w", err)
	}
	return r, nil
}

// run executes prog, loaded at progAddr, on cur. init is the row after the CIE program (for
// DW_CFA_restore), nil while running the CIE program itself. loc, when not
// nil, is the current location; execution stops once it would pass pc.
func run(c *cie, prog []byte, progAddr uint64, cur, init *row, pc uint64, loc *uint64) error {
	var stack []row // allocated only by remember_state, which few FDEs use
	rd := &reader{b: prog}
	advance := func(delta uint64) bool {
		if loc == nil {
			return true
		}
		n := *loc + delta*c.codeAlign
		if n > pc {
			return false
		}
		*loc = n
		return true
	}
	restore := func(reg uint64) {
		if reg >= numRegs {
			return
		}
		if init != nil {
			cur.regs[reg] = init.regs[reg]
		} else {
			cur.regs[reg] = rule{}
		}
	}
	for rd.left() > 0 {
		op := rd.u8()
		switch op & 0xc0 {
		case cfaAdvanceLoc:
			if !advance(uint64(op & 0x3f)) {
				return nil
			}
			continue
		case cfaOffset:
			cur.set(uint64(op&0x3f), rule{kind: ruleOffset, off: int64(rd.uleb()) * c.dataAlign})
			continue
		case cfaRestore:
			restore(uint64(op & 0x3f))
			continue
		}
		switch op {
		case cfaNop:
		case cfaSetLoc:
			v, err := rd.pointer(c.fdeEnc, c.addrSize, progAddr, 0)
			if err != nil {
				return err
			}
			if loc != nil {
				if v > pc {
					return nil
				}
				*loc = v
			}
		case cfaAdvanceLoc1:
			if !advance(uint64(rd.u8())) {
				return nil
			}
		case cfaAdvanceLoc2:
			if !advance(uint64(rd.u16())) {
				return nil
			}
		case cfaAdvanceLoc4:
			if !advance(uint64(rd.u32())) {
				return nil
			}
		case cfaOffsetExtended:
			reg := rd.uleb()
			cur.set(reg, rule{kind: ruleOffset, off: int64(rd.uleb()) * c.dataAlign})
		case cfaOffsetExtendedSF:
			reg := rd.uleb()
			cur.set(reg, rule{kind: ruleOffset, off: rd.sleb() * c.dataAlign})
		case cfaGNUNegOffsetExt:
			reg := rd.uleb()
			cur.set(reg, rule{kind: ruleOffset, off: -int64(rd.uleb()) * c.dataAlign})
		case cfaValOffset:
			reg := rd.uleb()
			cur.set(reg, rule{kind: ruleValOffset, off: int64(rd.uleb()) * c.dataAlign})
		case cfaValOffsetSF:
			reg := rd.uleb()
			cur.set(reg, rule{kind: ruleValOffset, off: rd.sleb() * c.dataAlign})
		case cfaRestoreExtended:
			restore(rd.uleb())
		case cfaUndefined:
			cur.set(rd.uleb(), rule{kind: ruleUndefined})
		case cfaSameValue:
			cur.set(rd.uleb(), rule{kind: ruleSame})
		case cfaRegister:
			reg := rd.uleb()
			cur.set(reg, rule{kind: ruleRegister, reg: uint16(rd.uleb())})
		case cfaRememberState:
			if len(stack) == maxRemember {
				return errBadCFI
			}
			stack = append(stack, *cur)
		case cfaRestoreState:
			if len(stack) == 0 {
				return errBadCFI
			}
			// The CFA rule is part of the remembered state too (DWARF 5, 6.4.2.4).
			*cur = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		case cfaDefCFA:
			cur.cfaReg = rd.uleb()
			cur.cfaOff = int64(rd.uleb())
			cur.cfaExpr = nil
		case cfaDefCFASF:
			cur.cfaReg = rd.uleb()
			cur.cfaOff = rd.sleb() * c.dataAlign
			cur.cfaExpr = nil
		case cfaDefCFARegister:
			cur.cfaReg = rd.uleb()
			cur.cfaExpr = nil
		case cfaDefCFAOffset:
			cur.cfaOff = int64(rd.uleb())
		case cfaDefCFAOffsetSF:
			cur.cfaOff = rd.sleb() * c.dataAlign
		case cfaDefCFAExpression:
			n := rd.uleb()
			if n > uint64(rd.left()) {
				return errTruncated
			}
			cur.cfaExpr = rd.take(int(n))
		case cfaExpression, cfaValExpression:
			reg := rd.uleb()
			n := rd.uleb()
			if n > uint64(rd.left()) {
				return errTruncated
			}
			k := ruleExpr
			if op == cfaValExpression {
				k = ruleValExpr
			}
			cur.set(reg, rule{kind: k, expr: rd.take(int(n))})
		case cfaGNUArgsSize:
			rd.uleb()
		case cfaGNUWindowSave:
			// Only AArch64 emits this (as DW_CFA_AARCH64_negate_ra_state);
			// SPARC register windows never reach us.
			cur.raSign = !cur.raSign
		default:
			return fmt.Errorf("%w: opcode %#x", errBadCFI, op)
		}
		if rd.err != nil {
			return rd.err
		}
	}
	return rd.err
}
