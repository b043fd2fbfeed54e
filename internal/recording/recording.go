// Package recording reads and writes snag recordings: a versioned header,
// then a zstd stream of length-prefixed records holding the trace metadata,
// every event, and the final aggregates. FORMAT.md describes the bytes.
//
// A recording is written as it goes. Flush makes everything so far
// decodable, so a recorder killed mid-run leaves a file whose readable
// prefix Read recovers, rebuilding the aggregates from the events.
package recording

// Magic opens every recording.
const Magic = "SNAGREC\x00"

// Version is the format version this package writes and reads. It changes
// only for incompatible changes; compatible additions use new record kinds
// or trailing payload fields, which older readers skip.
const Version uint16 = 1

// headerSize is the magic, the version and the flags.
const headerSize = len(Magic) + 2 + 2

// Record kinds.
const (
	kindMeta   byte = 1 // trace metadata; first non-definition record
	kindEvent  byte = 2 // one model.Event
	kindFinal  byte = 3 // aggregates known only at the end
	kindString byte = 4 // defines the next string table entry
	kindFrame  byte = 5 // defines the next frame dictionary entry
	kindSync   byte = 6 // CRC-32C of the record bytes since the previous sync
)

// maxRecord bounds a record's payload; a longer length is corruption.
const maxRecord = 16 << 20

// nrSlots is how many syscall numbers keep their own previous-arguments
// slot for delta coding; larger or negative numbers share the last slot.
const nrSlots = 1024

// Looks reports whether head, the first bytes of a file, starts a recording.
func Looks(head []byte) bool {
	return len(head) >= len(Magic) && string(head[:len(Magic)]) == Magic
}

func nrSlot(nr int) int {
	if nr >= 0 && nr < nrSlots-1 {
		return nr
	}
	return nrSlots - 1
}
