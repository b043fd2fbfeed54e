package bench

import (
	"bufio"
	"bytes"
	"testing"
)

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"+PONG\r\n", "$5\r\nhello\r\n", "$-1\r\n", "-ERR x\r\n", "$3\r\nab", ":1\r\n", "$" + "99999999999999999999\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readReply(bufio.NewReader(bytes.NewReader(data)))
		if err == nil && len(got) > len(data) {
			t.Fatalf("reply of %d bytes from %d bytes of input", len(got), len(data))
		}
	})
}

func FuzzInfoField(f *testing.F) {
	f.Add([]byte(infoStats), "total_commands_processed")
	f.Add([]byte("a:1\r\nb:2"), "b")
	f.Add([]byte("a:\r\n:\n"), "")
	f.Fuzz(func(t *testing.T, info []byte, key string) {
		infoField(info, key)
	})
}

func FuzzProcParsers(f *testing.F) {
	f.Add([]byte(linkFdinfo))
	f.Add([]byte("5813775 1343171 18\n"))
	f.Add([]byte("Name:\tw\nTracerPid:\t7\n"))
	f.Add([]byte("link_type:\traw_tracepoint\nprog_id:\t0\ntp_name:\t\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if tp, id, ok := rawTracepointLink(data); ok && (tp == "" || id == 0) {
			t.Fatalf("link accepted without a tracepoint or program: %q, %d", tp, id)
		}
		parseSchedstat(data)
		parseTracerPid(data)
	})
}
