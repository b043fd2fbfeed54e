package nodejs

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

// Node's own binary, when installed, carries the metadata.
func TestReadMetadataFromNode(t *testing.T) {
	f, err := elf.Open("/usr/bin/node")
	if err != nil {
		t.Skip("no /usr/bin/node")
	}
	defer f.Close()
	m, err := ReadMetadata(f)
	if errors.Is(err, ErrNoMetadata) {
		t.Skipf("this node has no metadata: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Constants V8 has not changed in a decade.
	if m.FPFunction != -16 || m.FPContext != -8 || m.HeapObjectTag != 1 || m.HeapObjectTagMask != 3 || m.SmiShift != 32 || m.HeapObjectMap != 0 {
		t.Errorf("frame and tagging constants %+v", m)
	}
	if m.TypeSFI == 0 || m.TypeScript == 0 || m.TypeScopeInfo == 0 || m.FirstNonstringType == 0 || m.JSFunctionShared == 0 {
		t.Errorf("type tags or offsets missing: %+v", m)
	}
}

// heap lays out fake V8 objects in a sparse memory.
type heap struct {
	m    *Metadata
	mem  map[uint64][]byte // page address → bytes
	next uint64
	maps map[uint16]uint64 // instance type → tagged map
}

const page = 4096

func newHeap() *heap {
	m := &Metadata{
		FPFunction: -16, FPContext: -8,
		HeapObjectMap: 0, MapInstanceType: 12, JSFunctionShared: 24,
		SFINameOrScopeInfo: 16, SFIScriptOrDebugInfo: 32,
		ScriptName: 16, ScriptSource: 8, ScriptLineEnds: 56,
		StringLength: 12, SeqOneByteChars: 16, SeqTwoByteChars: 16,
		ConsFirst: 16, ConsSecond: 24, ThinActual: 16, SlicedParent: 16, SlicedOffset: 24,
		FixedArrayLength: 8, FixedArrayData: 16,
		ScopeInfoFirstVars: 3, ScopeInfoNContextLocals: 2,
		HeapObjectTag: 1, HeapObjectTagMask: 3, SmiTagMask: 1, SmiShift: 32,
		FirstNonstringType: 128, StringRepresentationMask: 7, StringEncodingMask: 8,
		SeqStringTag: 0, ConsStringTag: 1, ThinStringTag: 5, SlicedStringTag: 3, OneByteStringTag: 8,
		TypeSFI: 262, TypeScopeInfo: 261, TypeScript: 167, TypeFixedArray: 175,
	}
	return &heap{m: m, mem: map[uint64][]byte{}, next: 0x10000, maps: map[uint16]uint64{}}
}

func (h *heap) write(addr uint64, b []byte) {
	for i, c := range b {
		a := addr + uint64(i)
		pg := h.mem[a/page*page]
		if pg == nil {
			pg = make([]byte, page)
			h.mem[a/page*page] = pg
		}
		pg[a%page] = c
	}
}

func (h *heap) word(addr, v uint64) { h.write(addr, binary.LittleEndian.AppendUint64(nil, v)) }

func (h *heap) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		a := uint64(off) + uint64(i)
		pg := h.mem[a/page*page]
		if pg == nil {
			return i, errors.New("unmapped")
		}
		p[i] = pg[a%page]
	}
	return len(p), nil
}

func smi(v int64) uint64 { return uint64(v) << 32 }

// object allocates size bytes of an object of type typ; it returns the
// tagged pointer.
func (h *heap) object(typ uint16, size uint64) uint64 {
	mp, ok := h.maps[typ]
	if !ok {
		mp = h.next + 1
		h.next += 64
		h.write(mp-1+h.m.MapInstanceType, binary.LittleEndian.AppendUint16(nil, typ))
		h.maps[typ] = mp
	}
	obj := h.next + 1
	h.next += (size + 15) &^ 15
	h.word(obj-1, mp)
	return obj
}

// oneByte stores s as V8 does a Latin-1 string, one byte a character.
func (h *heap) oneByte(s string) uint64 {
	var b []byte
	for _, c := range s {
		b = append(b, byte(c))
	}
	o := h.object(8 /* one-byte seq */, 16+uint64(len(b)))
	h.write(o-1+12, binary.LittleEndian.AppendUint32(nil, uint32(len(b))))
	h.write(o-1+16, b)
	return o
}

func (h *heap) twoByte(s string) uint64 {
	o := h.object(0 /* two-byte seq */, 16+2*uint64(len(s)))
	h.write(o-1+12, binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
	for i, c := range s {
		h.write(o-1+16+2*uint64(i), binary.LittleEndian.AppendUint16(nil, uint16(c)))
	}
	return o
}

func (h *heap) cons(a, b uint64, n int) uint64 {
	o := h.object(1|8, 32)
	h.write(o-1+12, binary.LittleEndian.AppendUint32(nil, uint32(n)))
	h.word(o-1+16, a)
	h.word(o-1+24, b)
	return o
}

// function makes a JSFunction whose ScopeInfo names it and starts it at
// pos, in a script named script with the given source and line ends.
func (h *heap) function(name, script string, source uint64, pos int64, lineEnds []int64) uint64 {
	si := h.object(h.m.TypeScopeInfo, 8+16*8)
	// flags, parameter count, no context locals, then the name and the
	// position pair somewhere after the first vars.
	h.word(si-1+8+0*8, smi(0))
	h.word(si-1+8+1*8, smi(1))
	h.word(si-1+8+2*8, smi(0))
	h.word(si-1+8+3*8, h.oneByte(name))
	h.word(si-1+8+4*8, smi(pos))
	h.word(si-1+8+5*8, smi(pos+40))
	sc := h.object(h.m.TypeScript, 64)
	h.word(sc-1+16, h.oneByte(script))
	h.word(sc-1+8, source)
	if lineEnds != nil {
		fa := h.object(h.m.TypeFixedArray, 16+8*uint64(len(lineEnds)))
		h.word(fa-1+8, smi(int64(len(lineEnds))))
		for i, e := range lineEnds {
			h.word(fa-1+16+8*uint64(i), smi(e))
		}
		h.word(sc-1+56, fa)
	} else {
		h.word(sc-1+56, smi(0)) // undefined would be an oddball; a Smi is not a FixedArray either
	}
	sfi := h.object(h.m.TypeSFI, 48)
	h.word(sfi-1+16, si)
	h.word(sfi-1+32, sc)
	fn := h.object(2066, 64)
	h.word(fn-1+24, sfi)
	return fn
}

func TestName(t *testing.T) {
	h := newHeap()
	src := "const fs = require('fs');\n\nfunction handleRequest(req) {\n  return fs.readFileSync(req);\n}\n"
	withEnds := h.function("handleRequest", "/srv/app.js", h.oneByte(src), 37, []int64{25, 26, 55, 87, 89})
	noEnds := h.function("handleRequest", "/srv/app.js", h.oneByte(src), 37, nil)
	twoByte := h.function("serve", "/srv/ünï.js", h.twoByte("x\ny\nfunction serve() {}\n"), 13, nil)
	cons := h.function("serve", "/srv/cons.js", h.cons(h.oneByte("a\nb\n"), h.oneByte("c\nfunction serve() {}\n"), 25), 15, nil)
	ctx := h.object(200, 16) // any heap object: a JavaScript frame's context

	// Five frames; their frame pointers in a copied stack.
	const base = 0x7ffc0000
	stack := make([]byte, 512)
	fps := []uint64{0, base + 0x40, base + 0x80, base + 0xc0, base + 0x100, base + 0x140, base + 0x180}
	put := func(fp, ctxOrMarker, fn uint64) {
		binary.LittleEndian.PutUint64(stack[fp-8-base:], ctxOrMarker)
		binary.LittleEndian.PutUint64(stack[fp-16-base:], fn)
	}
	put(fps[1], smi(5), 0) // an exit frame: a Smi marker, no function
	put(fps[2], ctx, withEnds)
	put(fps[3], ctx, noEnds)
	put(fps[4], ctx, twoByte)
	put(fps[5], ctx, cons)
	put(fps[6], ctx, ctx) // a "function" that is not one

	r := NewReader(procfs.FS{Root: t.TempDir()})
	r.Add(&Process{PID: 7, Meta: h.m})
	r.SetMemory(7, h)
	slots := r.Slots(7, fps, base, stack)
	if slots[0] != 0 || slots[1] != 0 || slots[2] != withEnds || slots[6] != ctx {
		t.Fatalf("slots %#x", slots)
	}
	frames := []model.Frame{
		{Function: "poll", Module: "libc.so.6"},
		{Function: "Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit", Module: "node"},
		{Function: "Builtins_InterpreterEntryTrampoline", Module: "node", Addr: 0x1234},
		{Addr: 0x7f7430027275}, // JIT code
		{Function: "Builtins_InterpreterEntryTrampoline", Module: "node"},
		{Function: "Builtins_InterpreterEntryTrampoline", Module: "node"},
		{Function: "Builtins_InterpreterEntryTrampoline", Module: "node"},
	}
	r.Name(7, frames, slots)
	want := []string{
		"poll (libc.so.6)",
		"Builtins_CEntry_Return1_ArgvOnStack_BuiltinExit (node)",
		"handleRequest (app.js:3)",
		"handleRequest (app.js:3)",
		"serve (ünï.js:3)",
		"serve (cons.js:4)",
		"Builtins_InterpreterEntryTrampoline (node)",
	}
	for i, f := range frames {
		if f.String() != want[i] {
			t.Errorf("frame %d: %s, want %s", i, f, want[i])
		}
	}
	if f := frames[2]; f.Kind != model.FrameInterpreter || f.Path != "/srv/app.js" || f.Addr != 0x1234 || f.Line != 3 {
		t.Errorf("frame 2: %+v", f)
	}
}

// A process whose memory is garbage yields no names, and no panic.
func TestNameGarbage(t *testing.T) {
	h := newHeap()
	r := NewReader(procfs.FS{Root: t.TempDir()})
	r.Add(&Process{PID: 7, Meta: h.m})
	r.SetMemory(7, h)
	stack := make([]byte, 64)
	for i := range stack {
		stack[i] = 0x41
	}
	frames := []model.Frame{{Addr: 1}, {Addr: 2}}
	r.Name(7, frames, r.Slots(7, []uint64{0x1000 + 32, 0x1000 + 48}, 0x1000, stack))
	if frames[0].Kind != model.FrameNative || frames[1].Kind != model.FrameNative {
		t.Errorf("garbage named: %+v", frames)
	}
}

func TestDetectNotNode(t *testing.T) {
	if _, err := Detect(procfs.Default, os.Getpid()); !errors.Is(err, ErrNotNode) {
		t.Errorf("Detect(self) = %v, want ErrNotNode", err)
	}
}
