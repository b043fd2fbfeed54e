package cpython

// LineFormat is the format of a code object's co_linetable.
type LineFormat uint8

const (
	// Lines310 is 3.10's: (bytecode bytes, signed line delta) byte pairs,
	// a delta of -128 meaning no line (PEP 626).
	Lines310 LineFormat = iota + 1
	// Lines311 is the location table of 3.11 and later (PEP 657): entries
	// of one header byte (1, code:4, length-1:3) and varint operands.
	Lines311
)

// lineRange says bytecode bytes [start, end) run line (-1: none).
type lineRange struct {
	start, end uint32
	line       int32
}

// maxRanges bounds the ranges decoded from one table.
const maxRanges = 1 << 16

// lineRanges decodes a line table into the address ranges of each line,
// in order, as CPython's own _PyLineTable_NextAddressRange walks it.
func lineRanges(format LineFormat, table []byte, firstLine int32) []lineRange {
	switch format {
	case Lines310:
		return ranges310(table, firstLine)
	case Lines311:
		return ranges311(table, firstLine)
	}
	return nil
}

func ranges310(table []byte, line int32) []lineRange {
	var out []lineRange
	var end uint32
	for i := 0; i+1 < len(table) && len(out) < maxRanges; i += 2 {
		start := end
		end += uint32(table[i])
		delta := int8(table[i+1])
		l := int32(-1)
		if delta != -128 {
			line += int32(delta)
			l = line
		}
		if end > start { // an empty range only moves the line
			out = append(out, lineRange{start, end, l})
		}
	}
	return out
}

// Location table entry codes (Include/cpython/code.h, 3.11 on).
const (
	locShortMax   = 9  // 0-9: short form, same line
	locOneLine0   = 10 // 10-12: one-line forms, line delta 0-2
	locOneLine2   = 12
	locNoColumns  = 13 // line delta as a signed varint
	locLong       = 14 // line delta as a signed varint, then columns
	locNoLocation = 15
)

func ranges311(table []byte, line int32) []lineRange {
	var out []lineRange
	var end uint32
	i := 0
	for i < len(table) && len(out) < maxRanges {
		b := table[i]
		if b&0x80 == 0 {
			return out // not an entry's first byte: corrupt
		}
		code := (b >> 3) & 15
		start := end
		end += 2 * (uint32(b&7) + 1) // in bytes: code units are two
		l := int32(-1)
		switch {
		case code == locNoLocation:
		case code == locNoColumns || code == locLong:
			d, _ := svarint(table[i+1:])
			line += d
			l = line
		case code >= locOneLine0 && code <= locOneLine2:
			line += int32(code - locOneLine0)
			l = line
		default: // short forms
			l = line
		}
		out = append(out, lineRange{start, end, l})
		// The next entry starts at the next byte with its top bit set.
		for i++; i < len(table) && table[i]&0x80 == 0; i++ {
		}
	}
	return out
}

// varint reads the location table's unsigned varint: 6-bit groups, least
// significant first, bit 6 set on all but the last.
func varint(b []byte) (uint32, int) {
	var v uint32
	for i, shift := 0, 0; i < len(b) && shift < 32; i, shift = i+1, shift+6 {
		v |= uint32(b[i]&63) << shift
		if b[i]&64 == 0 {
			return v, i + 1
		}
	}
	return v, len(b)
}

func svarint(b []byte) (int32, int) {
	v, n := varint(b)
	if v&1 != 0 {
		return -int32(v >> 1), n
	}
	return int32(v >> 1), n
}

// lineAt is the line running the instruction at byte offset lasti, or 0.
func lineAt(ranges []lineRange, lasti uint32) uint32 {
	for _, r := range ranges {
		if lasti >= r.start && lasti < r.end {
			if r.line <= 0 {
				return 0
			}
			return uint32(r.line)
		}
	}
	return 0
}
