package elfx

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/snagtrace/snag/internal/procfs"
)

func TestLRU(t *testing.T) {
	var evicted []string
	c := NewLRU[string, int](10, func(k string, _ int) { evicted = append(evicted, k) })
	c.Add("a", 1, 4)
	c.Add("b", 2, 4)
	c.Get("a") // b is now the least recently used
	c.Add("c", 3, 4)
	if _, ok := c.Get("b"); ok {
		t.Error("b survived eviction")
	}
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Errorf("a = %d, %v", v, ok)
	}
	if c.Used() != 8 || c.Len() != 2 {
		t.Errorf("used %d len %d, want 8 and 2", c.Used(), c.Len())
	}
	c.Add("huge", 4, 100) // over budget alone: kept, everything else goes
	if _, ok := c.Get("huge"); !ok || c.Len() != 1 {
		t.Errorf("huge entry not kept alone: len %d", c.Len())
	}
	c.Remove("huge")
	if want := []string{"b", "c", "a", "huge"}; !slices.Equal(evicted, want) {
		t.Errorf("evicted %v, want %v", evicted, want)
	}
}

func note(name string, typ uint32, desc []byte) []byte {
	n := append([]byte(name), 0)
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(n)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = append(b, n...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = append(b, desc...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestBuildIDFromNotes(t *testing.T) {
	id := []byte{0xde, 0xad, 0xbe, 0xef, 1}
	tests := []struct {
		name  string
		notes []byte
		want  string
	}{
		{"gnu build id", note("GNU", ntGNUBuildID, id), "deadbeef01"},
		{"after another note", append(note("GNU", 5, []byte{1, 2, 3, 4}), note("GNU", ntGNUBuildID, id)...), "deadbeef01"},
		{"other owner", note("Go", ntGNUBuildID, id), ""},
		{"truncated", note("GNU", ntGNUBuildID, id)[:18], ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		got := buildIDFromNotes(bytes.NewReader(tt.notes), uint64(len(tt.notes)), binary.LittleEndian)
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func FuzzBuildIDNotes(f *testing.F) {
	f.Add(note("GNU", ntGNUBuildID, []byte{1, 2, 3}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		buildIDFromNotes(bytes.NewReader(b), uint64(len(b)), binary.LittleEndian)
	})
}

func TestVaddr(t *testing.T) {
	// A PIE's text segment: file offset 0x1000 at vaddr 0x1000, mapped at
	// 0x5555_5555_5000 from offset 0x1000.
	o := &Object[struct{}]{loads: []segment{{off: 0, filesz: 0x800, vaddr: 0}, {off: 0x1000, filesz: 0x2000, vaddr: 0x1000}, {off: 0x3000, filesz: 0x100, vaddr: 0x4000}}}
	m := procfs.Mapping{Start: 0x555555555000, End: 0x555555557000, Offset: 0x1000}
	tests := []struct {
		addr uint64
		want uint64
		ok   bool
	}{
		{0x555555555000, 0x1000, true},
		{0x555555556abc, 0x2abc, true},
		{0x555555557000, 0, false}, // past the mapping
		{0x555555554fff, 0, false},
	}
	for _, tt := range tests {
		got, ok := o.Vaddr(m, tt.addr)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Vaddr(%#x) = %#x, %v; want %#x, %v", tt.addr, got, ok, tt.want, tt.ok)
		}
		if ok {
			if back, ok := o.Addr(m, got); !ok || back != tt.addr {
				t.Errorf("Addr(%#x) = %#x, %v; want %#x", got, back, ok, tt.addr)
			}
		}
	}
	// Data mapped at a vaddr that differs from its file offset.
	md := procfs.Mapping{Start: 0x555555559000, End: 0x55555555a000, Offset: 0x3000}
	if v, ok := o.Vaddr(md, 0x555555559010); !ok || v != 0x4010 {
		t.Errorf("data Vaddr = %#x, %v; want 0x4010", v, ok)
	}
}
