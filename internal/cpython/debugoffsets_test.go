package cpython

import (
	"encoding/binary"
	"strings"
	"testing"
)

// debugImage lays out _Py_DebugOffsets as the header of minor declares
// it, each field valued by set or else 8 within a 64 KiB struct.
func debugImage(minor string, version uint64, set map[string]uint64) []byte {
	b := append([]byte(debugCookie), make([]byte, 16)...)
	binary.LittleEndian.PutUint64(b[8:], version)
	for _, s := range debugLayouts[minor] {
		for _, f := range s.fields {
			v, ok := set[s.name+"."+f]
			switch {
			case ok:
			case f == "size":
				v = 1 << 16
			default:
				v = 8
			}
			b = binary.LittleEndian.AppendUint64(b, v)
		}
	}
	return b
}

func TestParseDebugOffsets(t *testing.T) {
	// The values of CPython 3.14.6's python-build-standalone x86-64 build.
	b := debugImage("3.14", 0x030e06f0, map[string]uint64{
		"runtime_state.interpreters_head": 808, "interpreter_state.threads_head": 7344,
		"thread_state.next": 8, "thread_state.current_frame": 72, "thread_state.thread_id": 152,
		"interpreter_frame.executable": 0, "interpreter_frame.previous": 8, "interpreter_frame.owner": 74,
		"interpreter_frame.instr_ptr": 56, "code_object.qualname": 128, "code_object.linetable": 136,
		"code_object.co_code_adaptive": 208, "unicode_object.asciiobject_size": 40,
	})
	off, hex, err := parseDebugOffsets(b, "3.14")
	if err != nil {
		t.Fatal(err)
	}
	if hexVersionString(hex) != "3.14.6" {
		t.Errorf("version %s, want 3.14.6", hexVersionString(hex))
	}
	if off.InterpretersHead != 808 || off.ThreadsHead != 7344 || off.TstateFrame != 72 || off.TstateThreadID != 152 ||
		off.FrameOwner != 74 || off.FrameInstr != 56 || off.CodeQualname != 128 || off.CodeAdaptive != 208 {
		t.Errorf("offsets %+v", off)
	}
	if off.Flags != FlagOwner|FlagTagged || off.ASCIIData != 40 || off.CompactData != 56 {
		t.Errorf("flags %b, unicode data at %d and %d", off.Flags, off.ASCIIData, off.CompactData)
	}

	// 3.13's layout has no threads_main: read as 3.14's, its fields shift
	// and a struct size lands where a field offset should be.
	if _, _, err := parseDebugOffsets(debugImage("3.13", 0x030e06f0, nil), "3.14"); err == nil {
		t.Error("3.13 offsets parsed as 3.14's")
	}
	for name, tc := range map[string]struct {
		b     []byte
		minor string
		want  string
	}{
		"cookie":        {append([]byte("xdebugpz"), b[8:]...), "3.14", "cookie"},
		"other version": {debugImage("3.14", 0x030d01f0, nil), "3.14", "version 3.13"},
		"past struct":   {debugImage("3.13", 0x030d01f0, map[string]uint64{"thread_state.next": 1 << 17}), "3.13", "thread_state.next"},
		"free-threaded": {append(b[:16:16], append([]byte{1, 0, 0, 0, 0, 0, 0, 0}, b[24:]...)...), "3.14", "free-threaded"},
		"short":         {b[:100], "3.14", "short"},
	} {
		if _, _, err := parseDebugOffsets(tc.b, tc.minor); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", name, err, tc.want)
		}
	}
}
