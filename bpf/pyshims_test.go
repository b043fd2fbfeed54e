//go:build linux

package bpf

import (
	"slices"
	"testing"
)

// A 3.12+ walk: a frame called from Python, its caller entered from C
// (the shim below it), a shim-entered frame further down.
func TestDropShims(t *testing.T) {
	code := []uint64{0xa, 0xb, 0, 0xc, 0}
	lasti := []uint32{10, 20, 0, 30, 0}
	gotCode, gotLasti, entry := dropShims(code, lasti, 0)
	if !slices.Equal(gotCode, []uint64{0xa, 0xb, 0xc}) || !slices.Equal(gotLasti, []uint32{10, 20, 30}) {
		t.Errorf("frames %x at %v, want a b c at 10 20 30", gotCode, gotLasti)
	}
	if entry != 0b110 {
		t.Errorf("entry bits %b, want 110: b and c were entered from C", entry)
	}
	// 3.10 and 3.11 have no shims: the bits stay as the kernel set them.
	if _, _, entry := dropShims([]uint64{1, 2, 3}, []uint32{0, 0, 0}, 0b101); entry != 0b101 {
		t.Errorf("entry bits %b, want 101", entry)
	}
}
