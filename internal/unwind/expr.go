package unwind

import "errors"

var errExpr = errors.New("unsupported dwarf expression")

// DWARF expression opcodes this evaluator accepts.
const (
	opConst1u    = 0x08
	opConst1s    = 0x09
	opAnd        = 0x1a
	opMinus      = 0x1c
	opPlus       = 0x22
	opPlusUconst = 0x23
	opShl        = 0x24
	opGe         = 0x2a
	opLit0       = 0x30
	opLit31      = 0x4f
	opBreg0      = 0x70
	opBreg31     = 0x8f
)

// evalExpr evaluates the small subset of DWARF expressions that glibc and
// binutils emit for CFA rules: the PLT-stub CFA
//
//	DW_OP_breg7 (rsp) 8; DW_OP_breg16 (rip) 0; DW_OP_lit15; DW_OP_and;
//	DW_OP_lit11 (lit10 for .plt.sec); DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus
//
// and plain register-plus-offset forms. Anything else (memory dereferences,
// branches) is refused, which stops the unwind rather than guessing. regVal
// returns a register's value and whether it is known.
func evalExpr(expr []byte, regVal func(reg uint64) (uint64, bool)) (uint64, error) {
	const maxStack = 8
	var st [maxStack]uint64
	n := 0
	push := func(v uint64) error {
		if n == maxStack {
			return errExpr
		}
		st[n] = v
		n++
		return nil
	}
	rd := &reader{b: expr}
	for rd.left() > 0 {
		op := rd.u8()
		var err error
		switch {
		case op >= opLit0 && op <= opLit31:
			err = push(uint64(op - opLit0))
		case op >= opBreg0 && op <= opBreg31:
			off := rd.sleb()
			v, ok := regVal(uint64(op - opBreg0))
			if !ok {
				return 0, errExpr
			}
			err = push(v + uint64(off))
		case op == opConst1u:
			err = push(uint64(rd.u8()))
		case op == opConst1s:
			err = push(uint64(int64(int8(rd.u8()))))
		case op == opPlusUconst:
			if n < 1 {
				return 0, errExpr
			}
			st[n-1] += rd.uleb()
		case op == opAnd || op == opPlus || op == opMinus || op == opShl || op == opGe:
			if n < 2 {
				return 0, errExpr
			}
			a, b := st[n-2], st[n-1]
			n--
			switch op {
			case opAnd:
				st[n-1] = a & b
			case opPlus:
				st[n-1] = a + b
			case opMinus:
				st[n-1] = a - b
			case opShl:
				if b >= 64 {
					st[n-1] = 0
				} else {
					st[n-1] = a << b
				}
			case opGe:
				if int64(a) >= int64(b) {
					st[n-1] = 1
				} else {
					st[n-1] = 0
				}
			}
		default:
			return 0, errExpr
		}
		if err != nil {
			return 0, err
		}
		if rd.err != nil {
			return 0, rd.err
		}
	}
	if n != 1 {
		return 0, errExpr
	}
	return st[0], nil
}
