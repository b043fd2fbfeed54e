package bench

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"simple", "+PONG\r\n", "PONG", false},
		{"bulk", "$5\r\nhello\r\n", "hello", false},
		{"empty bulk", "$0\r\n\r\n", "", false},
		{"bulk with CRLF inside", "$8\r\na:1\r\nb:2\r\n", "a:1\r\nb:2", false},
		{"error", "-ERR unknown command\r\n", "", true},
		{"nil bulk", "$-1\r\n", "", true},
		{"short bulk", "$10\r\nabc\r\n", "", true},
		{"huge bulk", "$99999999999\r\n", "", true},
		{"integer", ":1\r\n", "", true},
		{"empty line", "\r\n", "", true},
		{"eof", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readReply(bufio.NewReader(strings.NewReader(tc.in)))
			if (err != nil) != tc.wantErr || string(got) != tc.want {
				t.Errorf("readReply(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

const infoStats = "# Stats\r\ntotal_connections_received:53\r\ntotal_commands_processed:1234567\r\ninstantaneous_ops_per_sec:98000\r\n"

func TestInfoField(t *testing.T) {
	for _, tc := range []struct {
		name, info, key string
		want            uint64
		wantErr         bool
	}{
		{"present", infoStats, "total_commands_processed", 1234567, false},
		{"first", infoStats, "total_connections_received", 53, false},
		{"last, no CRLF", "a:1\r\nb:2", "b", 2, false},
		{"prefix of another key", "total_commands_processed_x:5\r\n", "total_commands_processed", 0, true},
		{"missing", infoStats, "rejected_connections", 0, true},
		{"not a number", "total_commands_processed:lots\r\n", "total_commands_processed", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := infoField([]byte(tc.info), tc.key)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("infoField(%q) = %d, %v; want %d, error %v", tc.key, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
