package elfx

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"io"
)

const ntGNUBuildID = 3

// BuildID returns the hex GNU build ID of f, or "" when it has none.
func BuildID(f *elf.File) string {
	if s := f.Section(".note.gnu.build-id"); s != nil {
		if id := buildIDFromNotes(s.Open(), s.Size, f.ByteOrder); id != "" {
			return id
		}
	}
	// Stripped files may have lost their section headers; the note is
	// still reachable through the PT_NOTE segments.
	for _, p := range f.Progs {
		if p.Type == elf.PT_NOTE {
			if id := buildIDFromNotes(p.Open(), p.Filesz, f.ByteOrder); id != "" {
				return id
			}
		}
	}
	return ""
}

func buildIDFromNotes(r io.Reader, size uint64, bo binary.ByteOrder) string {
	const maxNotes = 64 << 10
	if size > maxNotes {
		size = maxNotes
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return ""
	}
	for len(buf) >= 12 {
		namesz, descsz, typ := bo.Uint32(buf), bo.Uint32(buf[4:]), bo.Uint32(buf[8:])
		buf = buf[12:]
		nameEnd := align4(uint64(namesz))
		descEnd := nameEnd + align4(uint64(descsz))
		if nameEnd > uint64(len(buf)) || nameEnd+uint64(descsz) > uint64(len(buf)) {
			return ""
		}
		name := buf[:namesz]
		if typ == ntGNUBuildID && bytes.Equal(bytes.TrimRight(name, "\x00"), []byte("GNU")) && descsz > 0 {
			return hex.EncodeToString(buf[nameEnd : nameEnd+uint64(descsz)])
		}
		if descEnd > uint64(len(buf)) {
			return ""
		}
		buf = buf[descEnd:]
	}
	return ""
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }
