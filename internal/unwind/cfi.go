package unwind

import (
	"errors"
	"fmt"
	"sort"
)

// section is a CFI section and the address it is loaded at.
type section struct {
	data  []byte
	addr  uint64
	debug bool // .debug_frame rather than .eh_frame
}

// cie is a parsed Common Information Entry.
type cie struct {
	codeAlign uint64
	dataAlign int64
	raReg     uint64
	fdeEnc    uint8
	hasAug    bool // "z…": FDEs carry an augmentation length
	signal    bool // "S": the frame is a signal trampoline
	addrSize  int
	initial   []byte
	initAddr  uint64 // load address of initial, for pc-relative DW_CFA_set_loc
}

// fde is a parsed Frame Description Entry.
type fde struct {
	cie        *cie
	start, end uint64
	instr      []byte
	instrAddr  uint64
}

// fdeRef locates an FDE in a sorted index.
type fdeRef struct {
	start uint64
	off   uint32
	sec   uint8 // index into table.secs
}

// table is the CFI of one ELF file: its sections and a way to find the FDE
// covering an address, the .eh_frame_hdr search table when usable, else an
// index built by scanning.
type table struct {
	ptrSize int
	secs    []section
	hdr     hdrTable
	index   []fdeRef
	cies    map[cieKey]*cie
}

type cieKey struct {
	sec uint8
	off uint32
}

// hdrTable is the binary search table of .eh_frame_hdr, used only in its
// usual encoding (datarel sdata4 pairs), which makes entries fixed-size.
type hdrTable struct {
	entries []byte // count*8 bytes of (initial_loc, fde_addr)
	base    uint64 // address of .eh_frame_hdr, the datarel base
	eh      uint8  // index of the .eh_frame section in table.secs
	ok      bool
}

const (
	maxCIEs     = 4096
	maxEntries  = 1 << 22 // FDEs we index per file; libc has about 3,700
	maxRemember = 32
)

var errNoFDE = errors.New("no fde covers address")

// newTable builds the lookup structure. eh and debug may be empty; hdr is
// the .eh_frame_hdr section (empty if absent).
func newTable(ptrSize int, eh section, hdr section, debug section) *table {
	t := &table{ptrSize: ptrSize, cies: make(map[cieKey]*cie)}
	if len(eh.data) > 0 {
		t.secs = append(t.secs, eh)
		ehIdx := uint8(len(t.secs) - 1)
		if !t.useHdr(hdr, eh, ehIdx) {
			t.scan(ehIdx)
		}
	}
	if len(debug.data) > 0 {
		debug.debug = true
		t.secs = append(t.secs, debug)
		t.scan(uint8(len(t.secs) - 1))
	}
	sort.Slice(t.index, func(i, j int) bool { return t.index[i].start < t.index[j].start })
	return t
}

func (t *table) size() int64 {
	n := int64(len(t.index)) * 16
	for _, s := range t.secs {
		n += int64(len(s.data))
	}
	return n + int64(len(t.hdr.entries))
}

func (t *table) useHdr(hdr, eh section, ehIdx uint8) bool {
	r := &reader{b: hdr.data}
	version, ptrEnc, countEnc, tableEnc := r.u8(), r.u8(), r.u8(), r.u8()
	if r.err != nil || version != 1 || tableEnc != peDatarel|peSdata4 {
		return false
	}
	ehPtr, err := r.pointer(ptrEnc, t.ptrSize, hdr.addr, hdr.addr)
	if err != nil || ehPtr != eh.addr {
		return false
	}
	count, err := r.pointer(countEnc, t.ptrSize, hdr.addr, hdr.addr)
	if err != nil || count > uint64(r.left())/8 {
		return false
	}
	t.hdr = hdrTable{entries: r.take(int(count) * 8), base: hdr.addr, eh: ehIdx, ok: true}
	return true
}

// scan indexes every FDE of section si.
func (t *table) scan(si uint8) {
	s := t.secs[si]
	off := 0
	for off < len(s.data) && len(t.index) < maxEntries {
		next, isCIE, err := t.entryBounds(s, off)
		if err != nil || next < 0 {
			return
		}
		if !isCIE {
			if f, err := t.parseFDE(si, off); err == nil && f.end > f.start {
				t.index = append(t.index, fdeRef{start: f.start, off: uint32(off), sec: si})
			}
		}
		off = next
	}
}

// entryBounds returns the offset of the entry after the one at off, or -1 at
// an .eh_frame terminator, and whether the entry at off is a CIE.
func (t *table) entryBounds(s section, off int) (int, bool, error) {
	r := &reader{b: s.data, pos: off}
	length := uint64(r.u32())
	is64 := false
	if length == 0xffffffff {
		length = r.u64()
		is64 = true
	}
	if r.err != nil {
		return 0, false, r.err
	}
	if length == 0 {
		if s.debug {
			return r.pos, false, errTruncated
		}
		return -1, false, nil
	}
	if length > uint64(r.left()) {
		return 0, false, errTruncated
	}
	next := r.pos + int(length)
	var id uint64
	if is64 {
		id = r.u64()
	} else {
		id = uint64(r.u32())
	}
	if r.err != nil {
		return 0, false, r.err
	}
	switch {
	case !s.debug:
		return next, id == 0, nil
	case is64:
		return next, id == ^uint64(0), nil
	default:
		return next, id == 0xffffffff, nil
	}
}

// parseCIE parses (or returns the cached) CIE at off in section si.
func (t *table) parseCIE(si uint8, off int) (*cie, error) {
	k := cieKey{si, uint32(off)}
	if c, ok := t.cies[k]; ok {
		return c, nil
	}
	s := t.secs[si]
	if off < 0 || off >= len(s.data) {
		return nil, errTruncated
	}
	next, isCIE, err := t.entryBounds(s, off)
	if err != nil || next < 0 || !isCIE {
		return nil, fmt.Errorf("no cie at offset %#x", off)
	}
	r := &reader{b: s.data[:next], pos: off}
	if r.u32() == 0xffffffff {
		r.u64()
		r.u64()
	} else {
		r.u32()
	}
	c := &cie{addrSize: t.ptrSize, fdeEnc: peAbsptr}
	version := r.u8()
	if version != 1 && version != 3 && version != 4 {
		return nil, fmt.Errorf("cie version %d", version)
	}
	aug := r.cstring()
	if version == 4 {
		c.addrSize = int(r.u8())
		if r.u8() != 0 { // segment selector size
			return nil, errors.New("segmented addresses")
		}
		if c.addrSize != 4 && c.addrSize != 8 {
			return nil, fmt.Errorf("address size %d", c.addrSize)
		}
	}
	c.codeAlign = r.uleb()
	c.dataAlign = r.sleb()
	if version == 1 {
		c.raReg = uint64(r.u8())
	} else {
		c.raReg = r.uleb()
	}
	if len(aug) > 0 && aug[0] == 'z' {
		c.hasAug = true
		augLen := r.uleb()
		if augLen > uint64(r.left()) {
			return nil, errTruncated
		}
		augEnd := r.pos + int(augLen)
		for _, ch := range aug[1:] {
			switch ch {
			case 'R':
				c.fdeEnc = r.u8()
			case 'L':
				r.u8() // LSDA encoding; the LSDA itself is skipped via the FDE's augmentation length
			case 'P':
				enc := r.u8()
				if _, err := r.pointer(enc&^peIndirect, c.addrSize, s.addr, 0); err != nil {
					return nil, fmt.Errorf("personality: %w", err)
				}
			case 'S':
				c.signal = true
			default:
				// Unknown letters ('B' on arm64, …) carry no data we need;
				// the augmentation length lets us skip whatever they hold.
			}
		}
		if r.err != nil || r.pos > augEnd {
			return nil, errTruncated
		}
		r.pos = augEnd
	} else if aug != "" {
		return nil, fmt.Errorf("augmentation %q", aug)
	}
	if r.err != nil {
		return nil, r.err
	}
	c.initial = r.b[r.pos:next]
	c.initAddr = s.addr + uint64(r.pos)
	if len(t.cies) < maxCIEs {
		t.cies[k] = c
	}
	return c, nil
}

// parseFDE parses the FDE at off in section si.
func (t *table) parseFDE(si uint8, off int) (*fde, error) {
	s := t.secs[si]
	if off < 0 || off >= len(s.data) {
		return nil, errTruncated
	}
	next, isCIE, err := t.entryBounds(s, off)
	if err != nil || next < 0 || isCIE {
		return nil, fmt.Errorf("no fde at offset %#x", off)
	}
	r := &reader{b: s.data[:next], pos: off}
	is64 := r.u32() == 0xffffffff
	if is64 {
		r.u64()
	}
	idPos := r.pos
	var id uint64
	if is64 {
		id = r.u64()
	} else {
		id = uint64(r.u32())
	}
	var cieOff int
	if s.debug {
		cieOff = int(id)
		if id > uint64(len(s.data)) {
			return nil, errTruncated
		}
	} else {
		// In .eh_frame the pointer is relative to the field itself.
		if id > uint64(idPos) {
			return nil, errTruncated
		}
		cieOff = idPos - int(id)
	}
	c, err := t.parseCIE(si, cieOff)
	if err != nil {
		return nil, err
	}
	f := &fde{cie: c}
	if s.debug {
		if c.addrSize == 4 {
			f.start, f.end = uint64(r.u32()), uint64(r.u32())
		} else {
			f.start, f.end = r.u64(), r.u64()
		}
	} else {
		if f.start, err = r.pointer(c.fdeEnc, c.addrSize, s.addr, 0); err != nil {
			return nil, err
		}
		// The range is a plain length in the same format, never pc-relative.
		if f.end, err = r.pointer(c.fdeEnc&0x0f, c.addrSize, s.addr, 0); err != nil {
			return nil, err
		}
	}
	f.end += f.start
	if c.hasAug {
		n := r.uleb()
		if n > uint64(r.left()) {
			return nil, errTruncated
		}
		r.pos += int(n)
	}
	if r.err != nil {
		return nil, r.err
	}
	f.instr = r.b[r.pos:next]
	f.instrAddr = s.addr + uint64(r.pos)
	return f, nil
}

// find returns the FDE covering pc.
func (t *table) find(pc uint64) (*fde, error) {
	if t.hdr.ok {
		if f, err := t.findHdr(pc); err == nil {
			return f, nil
		}
	}
	i := sort.Search(len(t.index), func(i int) bool { return t.index[i].start > pc }) - 1
	// Nested or overlapping ranges are rare; look back a few entries.
	for j := i; j >= 0 && j > i-4; j-- {
		ref := t.index[j]
		f, err := t.parseFDE(ref.sec, int(ref.off))
		if err == nil && pc >= f.start && pc < f.end {
			return f, nil
		}
	}
	return nil, errNoFDE
}

func (t *table) findHdr(pc uint64) (*fde, error) {
	h := &t.hdr
	n := len(h.entries) / 8
	loc := func(i int) uint64 {
		return h.base + uint64(int64(int32(leU32(h.entries[i*8:]))))
	}
	i := sort.Search(n, func(i int) bool { return loc(i) > pc }) - 1
	if i < 0 {
		return nil, errNoFDE
	}
	fdeAddr := h.base + uint64(int64(int32(leU32(h.entries[i*8+4:]))))
	eh := t.secs[h.eh]
	if fdeAddr < eh.addr || fdeAddr-eh.addr >= uint64(len(eh.data)) {
		return nil, errNoFDE
	}
	f, err := t.parseFDE(h.eh, int(fdeAddr-eh.addr))
	if err != nil {
		return nil, err
	}
	if pc < f.start || pc >= f.end {
		return nil, errNoFDE
	}
	return f, nil
}

func leU32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
