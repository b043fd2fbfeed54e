package unwind

import (
	"encoding/binary"
	"errors"
)

var errTruncated = errors.New("truncated cfi")

// reader is a bounds-checked cursor over little-endian CFI bytes. The first
// out-of-range read sets err and every later read returns zero, so parsing
// code can check once at the end of a record.
type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) left() int { return len(r.b) - r.pos }

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > r.left() {
		r.err = errTruncated
		return nil
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s
}

func (r *reader) u8() uint8 {
	if s := r.take(1); s != nil {
		return s[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if s := r.take(2); s != nil {
		return binary.LittleEndian.Uint16(s)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if s := r.take(4); s != nil {
		return binary.LittleEndian.Uint32(s)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if s := r.take(8); s != nil {
		return binary.LittleEndian.Uint64(s)
	}
	return 0
}

func (r *reader) uleb() uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		b := r.u8()
		if r.err != nil {
			return 0
		}
		if shift < 64 {
			v |= uint64(b&0x7f) << shift
		}
		if b&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) sleb() int64 {
	var v int64
	var shift uint
	var b uint8
	for {
		b = r.u8()
		if r.err != nil {
			return 0
		}
		if shift < 64 {
			v |= int64(b&0x7f) << shift
		}
		shift += 7
		if b&0x80 == 0 {
			break
		}
	}
	if shift < 64 && b&0x40 != 0 {
		v |= -1 << shift
	}
	return v
}

// cstring reads a NUL-terminated string.
func (r *reader) cstring() string {
	for i := r.pos; i < len(r.b); i++ {
		if r.b[i] == 0 {
			s := string(r.b[r.pos:i])
			r.pos = i + 1
			return s
		}
	}
	r.err = errTruncated
	return ""
}

// Pointer encodings of .eh_frame (LSB, "DWARF Exception Header Encoding").
const (
	peAbsptr  = 0x00
	peUleb128 = 0x01
	peUdata2  = 0x02
	peUdata4  = 0x03
	peUdata8  = 0x04
	peSleb128 = 0x09
	peSdata2  = 0x0a
	peSdata4  = 0x0b
	peSdata8  = 0x0c

	pePcrel    = 0x10
	peTextrel  = 0x20
	peDatarel  = 0x30
	peFuncrel  = 0x40
	peAligned  = 0x50
	peIndirect = 0x80
	peOmit     = 0xff
)

var errEncoding = errors.New("unsupported pointer encoding")

// pointer decodes a value in encoding enc. secAddr is the address at which
// r.b is loaded (for pcrel) and dataBase the base for datarel.
func (r *reader) pointer(enc uint8, ptrSize int, secAddr, dataBase uint64) (uint64, error) {
	if enc == peOmit {
		return 0, nil
	}
	fieldAddr := secAddr + uint64(r.pos)
	var v uint64
	switch enc & 0x0f {
	case peAbsptr:
		if ptrSize == 4 {
			v = uint64(r.u32())
		} else {
			v = r.u64()
		}
	case peUleb128:
		v = r.uleb()
	case peUdata2:
		v = uint64(r.u16())
	case peUdata4:
		v = uint64(r.u32())
	case peUdata8:
		v = r.u64()
	case peSleb128:
		v = uint64(r.sleb())
	case peSdata2:
		v = uint64(int64(int16(r.u16())))
	case peSdata4:
		v = uint64(int64(int32(r.u32())))
	case peSdata8:
		v = r.u64()
	default:
		return 0, errEncoding
	}
	if r.err != nil {
		return 0, r.err
	}
	switch enc & 0x70 {
	case 0:
	case pePcrel:
		v += fieldAddr
	case peDatarel:
		v += dataBase
	default:
		// textrel, funcrel and aligned do not occur in the files we read.
		return 0, errEncoding
	}
	return v, nil
}
