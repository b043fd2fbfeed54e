package cpython

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// _Py_DebugOffsets opens _PyRuntime from 3.13 on: a cookie, the version,
// the free-threaded flag, then sections of uint64 struct offsets. The
// sections and their fields change between minor versions (never within
// one), so each minor version's order is listed here as its header
// declares it (pycore_runtime.h in 3.13, pycore_debug_offsets.h in 3.14);
// the offsets themselves come from the process, so a patch release that
// moves a field is read right.
type debugSection struct {
	name   string
	fields []string
}

var debugLayouts = map[string][]debugSection{
	"3.13": {
		{"runtime_state", []string{"size", "finalizing", "interpreters_head"}},
		{"interpreter_state", []string{"size", "id", "next", "threads_head", "gc", "imports_modules", "sysdict", "builtins",
			"ceval_gil", "gil_runtime_state", "gil_runtime_state_enabled", "gil_runtime_state_locked", "gil_runtime_state_holder"}},
		{"thread_state", []string{"size", "prev", "next", "interp", "current_frame", "thread_id", "native_thread_id",
			"datastack_chunk", "status"}},
		{"interpreter_frame", []string{"size", "previous", "executable", "instr_ptr", "localsplus", "owner"}},
		{"code_object", []string{"size", "filename", "name", "qualname", "linetable", "firstlineno", "argcount",
			"localsplusnames", "localspluskinds", "co_code_adaptive"}},
		{"pyobject", []string{"size", "ob_type"}},
		{"type_object", []string{"size", "tp_name", "tp_repr", "tp_flags"}},
		{"tuple_object", []string{"size", "ob_item", "ob_size"}},
		{"list_object", []string{"size", "ob_item", "ob_size"}},
		{"dict_object", []string{"size", "ma_keys", "ma_values"}},
		{"float_object", []string{"size", "ob_fval"}},
		{"long_object", []string{"size", "lv_tag", "ob_digit"}},
		{"bytes_object", []string{"size", "ob_size", "ob_sval"}},
		{"unicode_object", []string{"size", "state", "length", "asciiobject_size"}},
	},
	"3.14": {
		{"runtime_state", []string{"size", "finalizing", "interpreters_head"}},
		{"interpreter_state", []string{"size", "id", "next", "threads_head", "threads_main", "gc", "imports_modules", "sysdict",
			"builtins", "ceval_gil", "gil_runtime_state", "gil_runtime_state_enabled", "gil_runtime_state_locked",
			"gil_runtime_state_holder", "code_object_generation", "tlbc_generation"}},
		{"thread_state", []string{"size", "prev", "next", "interp", "current_frame", "thread_id", "native_thread_id",
			"datastack_chunk", "status"}},
		{"interpreter_frame", []string{"size", "previous", "executable", "instr_ptr", "localsplus", "owner", "stackpointer",
			"tlbc_index"}},
		{"code_object", []string{"size", "filename", "name", "qualname", "linetable", "firstlineno", "argcount",
			"localsplusnames", "localspluskinds", "co_code_adaptive", "co_tlbc"}},
		{"pyobject", []string{"size", "ob_type"}},
		{"type_object", []string{"size", "tp_name", "tp_repr", "tp_flags"}},
		{"tuple_object", []string{"size", "ob_item", "ob_size"}},
		{"list_object", []string{"size", "ob_item", "ob_size"}},
		{"set_object", []string{"size", "used", "table", "mask"}},
		{"dict_object", []string{"size", "ma_keys", "ma_values"}},
		{"float_object", []string{"size", "ob_fval"}},
		{"long_object", []string{"size", "lv_tag", "ob_digit"}},
		{"bytes_object", []string{"size", "ob_size", "ob_sval"}},
		{"unicode_object", []string{"size", "state", "length", "asciiobject_size"}},
	},
}

// debugCookie opens _Py_DebugOffsets.
const debugCookie = "xdebugpy"

// debugHeader is the cookie, version and free-threaded flag.
const debugHeader = 24

// debugSize is how many bytes of _PyRuntime hold every layout's sections.
func debugSize(layout []debugSection) int {
	n := debugHeader
	for _, s := range layout {
		n += 8 * len(s.fields)
	}
	return n
}

// compactExtra is what PyCompactUnicodeObject adds to PyASCIIObject from
// 3.12 on (utf8_length, utf8): _Py_DebugOffsets has no field for it.
const compactExtra = 16

// parseDebugOffsets turns the start of _PyRuntime into Offsets for the
// minor version named by the interpreter's file; hexVersion is the
// PY_VERSION_HEX found there.
func parseDebugOffsets(b []byte, minor string) (off Offsets, hexVersion uint64, err error) {
	layout, ok := debugLayouts[minor]
	if !ok {
		return off, 0, fmt.Errorf("no _Py_DebugOffsets layout known for %s", minor)
	}
	if len(b) < debugSize(layout) {
		return off, 0, errors.New("_Py_DebugOffsets: short read")
	}
	if !bytes.Equal(b[:8], []byte(debugCookie)) {
		return off, 0, fmt.Errorf("_PyRuntime does not start with the %q cookie", debugCookie)
	}
	hexVersion = binary.LittleEndian.Uint64(b[8:])
	if got := fmt.Sprintf("%d.%d", hexVersion>>24&0xff, hexVersion>>16&0xff); got != minor {
		return off, hexVersion, fmt.Errorf("_Py_DebugOffsets of version %s in a python%s", got, minor)
	}
	if binary.LittleEndian.Uint64(b[16:]) != 0 {
		return off, hexVersion, errors.New("a free-threaded build: not supported")
	}
	v := map[string]uint64{}
	at := debugHeader
	for _, s := range layout {
		for _, f := range s.fields {
			v[s.name+"."+f] = binary.LittleEndian.Uint64(b[at:])
			at += 8
		}
	}
	// Every field used must lie inside its struct: a layout listed wrong
	// for this version fails here instead of walking garbage.
	get := func(key string) uint32 {
		sec := key[:bytes.IndexByte([]byte(key), '.')]
		x, size := v[key], v[sec+".size"]
		if x >= size || size > 1<<20 {
			if err == nil {
				err = fmt.Errorf("_Py_DebugOffsets: %s is %d, past its struct's %d bytes", key, x, size)
			}
			return 0
		}
		return uint32(x)
	}
	off = Offsets{
		InterpretersHead: get("runtime_state.interpreters_head"),
		ThreadsHead:      get("interpreter_state.threads_head"),
		TstateNext:       get("thread_state.next"),
		TstateThreadID:   get("thread_state.thread_id"),
		TstateFrame:      get("thread_state.current_frame"),
		FrameCode:        get("interpreter_frame.executable"),
		FramePrevious:    get("interpreter_frame.previous"),
		FrameOwner:       get("interpreter_frame.owner"),
		FrameInstr:       get("interpreter_frame.instr_ptr"),
		CodeFilename:     get("code_object.filename"),
		CodeQualname:     get("code_object.qualname"),
		CodeFirstLineno:  get("code_object.firstlineno"),
		CodeLinetable:    get("code_object.linetable"),
		CodeAdaptive:     get("code_object.co_code_adaptive"),
		BytesSize:        get("bytes_object.ob_size"),
		BytesData:        get("bytes_object.ob_sval"),
		UnicodeLength:    get("unicode_object.length"),
		UnicodeState:     get("unicode_object.state"),
		ASCIIData:        uint32(v["unicode_object.asciiobject_size"]),
		Flags:            FlagOwner,
		Lines:            Lines311,
	}
	off.CompactData = off.ASCIIData + compactExtra
	if minor != "3.13" {
		off.Flags |= FlagTagged // f_executable is a _PyStackRef from 3.14 on
	}
	return off, hexVersion, err
}
