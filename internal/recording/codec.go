package recording

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errShort reports a payload that ends inside a field.
var errShort = errors.New("payload ends inside a field")

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// cursor decodes a record payload. The first failure sticks in err and
// every later read returns zero values, so decoders check err once.
type cursor struct {
	b   []byte
	err error
}

func (c *cursor) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

func (c *cursor) byte() byte {
	if c.err != nil {
		return 0
	}
	if len(c.b) == 0 {
		c.fail(errShort)
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) bool() bool { return c.byte() != 0 }

func (c *cursor) uvarint() uint64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Uvarint(c.b)
	if n <= 0 {
		c.fail(errShort)
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) varint() int64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Varint(c.b)
	if n <= 0 {
		c.fail(errShort)
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) int() int { return int(c.varint()) }

func (c *cursor) bytes(n uint64) []byte {
	if c.err != nil {
		return nil
	}
	if n > uint64(len(c.b)) {
		c.fail(errShort)
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

// count reads a list length. Every element takes at least one byte, so a
// count beyond the remaining payload is corruption, caught before anything
// is allocated for it.
// syscallIndex reads the index of one of a record's n syscall aggregates,
// which a later group of the final record (an op, an untimed mark) names.
func (c *cursor) syscallIndex(n int, what string) (int, bool) {
	i := c.uvarint()
	if c.err != nil {
		return 0, false
	}
	if i >= uint64(n) {
		c.fail(fmt.Errorf("%s of syscall aggregate %d of %d", what, i, n))
		return 0, false
	}
	return int(i), true
}

func (c *cursor) count(what string) int {
	n := c.uvarint()
	if c.err == nil && n > uint64(len(c.b)) {
		c.fail(fmt.Errorf("%s count %d exceeds the %d bytes left", what, n, len(c.b)))
		return 0
	}
	return int(n)
}

// bytesOr reads n bytes, or returns n zero bytes after a failure so that
// fixed-size conversions never panic.
func (c *cursor) bytesOr(n int) []byte {
	if b := c.bytes(uint64(n)); b != nil {
		return b
	}
	return make([]byte, n)
}
