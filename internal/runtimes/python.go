package runtimes

import (
	"debug/elf"
	"errors"
	"fmt"

	"github.com/snagtrace/snag/internal/procfs"
)

// maxObject bounds the size of an interpreter object read for its
// version; libpython is a few MiB, a statically linked python a few tens.
const maxObject = 512 << 20

// pythonPatchVersion reads the full version ("3.11.7") of the CPython in
// mapping m: Py_Version, exported since 3.11, is PY_VERSION_HEX as a
// constant in the object's read-only data.
func pythonPatchVersion(fs procfs.FS, pid int, m procfs.Mapping) (string, error) {
	f, err := fs.OpenInRoot(pid, m.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", m.Path, err)
	}
	if st.Size() > maxObject {
		return "", fmt.Errorf("%s: %d bytes, over the %d limit", m.Path, st.Size(), maxObject)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", m.Path, err)
	}
	defer ef.Close()
	hex, err := pyVersionHex(ef)
	if err != nil {
		return "", fmt.Errorf("%s: %w", m.Path, err)
	}
	return fmt.Sprintf("%d.%d.%d", hex>>24, hex>>16&0xff, hex>>8&0xff), nil
}

func pyVersionHex(ef *elf.File) (uint32, error) {
	syms, err := ef.DynamicSymbols()
	if err != nil {
		return 0, fmt.Errorf("dynamic symbols: %w", err)
	}
	for _, s := range syms {
		if s.Name != "Py_Version" {
			continue
		}
		if int(s.Section) >= len(ef.Sections) || s.Size < 4 {
			return 0, errors.New("Py_Version in no section")
		}
		sec := ef.Sections[s.Section]
		if sec.Type == elf.SHT_NOBITS || s.Value < sec.Addr || s.Value-sec.Addr+4 > sec.Size {
			return 0, errors.New("Py_Version outside its section's data")
		}
		var b [4]byte
		if _, err := sec.ReadAt(b[:], int64(s.Value-sec.Addr)); err != nil {
			return 0, fmt.Errorf("read Py_Version: %w", err)
		}
		// An unsigned long holding 0x030b07f0: its low 32 bits.
		v := ef.ByteOrder.Uint32(b[:])
		if ef.ByteOrder.String() == "BigEndian" && s.Size == 8 {
			if _, err := sec.ReadAt(b[:], int64(s.Value-sec.Addr+4)); err != nil {
				return 0, fmt.Errorf("read Py_Version: %w", err)
			}
			v = ef.ByteOrder.Uint32(b[:])
		}
		if v>>24 < 2 || v>>24 > 3 {
			return 0, fmt.Errorf("implausible Py_Version %#x", v)
		}
		return v, nil
	}
	return 0, errors.New("no Py_Version symbol (before 3.11)")
}
