package analyzer

import (
	"bytes"
	"strings"
	"testing"
)

// A binary file given as --expect-file gets a short error, not its bytes.
func TestReadExpectFileBinary(t *testing.T) {
	bin := bytes.Repeat([]byte{0x7f, 'E', 'L', 'F', 0, 1, 2, 0xff}, 1000)
	for _, in := range [][]byte{bin, bytes.Repeat([]byte("x"), 8000)} {
		_, err := ReadExpectFile(bytes.NewReader(in))
		if err == nil || len(err.Error()) > 100 || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("err %q: want a short error naming line 1", err)
		}
	}
}
