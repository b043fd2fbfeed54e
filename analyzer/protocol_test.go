package analyzer

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestProtocol(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		// The greeting MariaDB 10.11 sent on this project's example.
		{"mariadb greeting", append(mustHex("5b0000000a"), "5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x08\x00"...), "mysql"},
		{"postgres startup", mustHex("0000004f00030000757365720070"), "postgresql"},
		{"postgres sslrequest", mustHex("0000000804d2162f"), "postgresql"},
		{"redis command", []byte("*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n"), "redis"},
		{"http request", []byte("GET /health HTTP/1.1\r\nHost: x\r\n"), "http"},
		{"http response", []byte("HTTP/1.1 200 OK\r\n"), "http"},
		{"tls client hello", mustHex("160301020001"), "tls"},
		{"amqp header", []byte("AMQP\x00\x00\x09\x01"), "amqp"},
		{"memcached text", []byte("get user:42\r\n"), "memcached"},
		{"mongodb op_msg", mustHex("3d000000" + "01000000" + "00000000" + "dd070000" + "00000000"), "mongodb"},
		{"binary garbage", mustHex("0102030405060708"), ""},
		{"short", []byte("G"), ""},
		{"empty", nil, ""},
		{"text that only starts like a greeting", []byte("\x05\x00\x00\x00\x0a\x01\x02"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Protocol(tc.in); got != tc.want {
				t.Errorf("Protocol = %q, want %q", got, tc.want)
			}
		})
	}
}

// A database on a non-standard port is named by its greeting, in the
// inventory and in the stall it causes.
func TestServiceFromFirstBytes(t *testing.T) {
	b := newTrace(4*time.Second).process(100, "python3 app.py").thread(100, 100, "python3", 90*ms)
	db := inet("127.0.0.1:13306")
	b.t.Events = append(b.t.Events,
		model.Event{Kind: model.EvConnect, PID: 100, TID: 100, Syscall: "connect", FD: 7, Peer: db, Time: b.t.StartNS + 1},
		model.Event{Kind: model.EvPeek, PID: 100, TID: 100, Syscall: "recvfrom", FD: 7, Peer: db, Time: b.t.StartNS + 2,
			Data: append(mustHex("5b0000000a"), "5.5.5-10.11.19-MariaDB\x00"...)})
	b.calls(100, 100, "epoll_wait", 4, 12*time.Microsecond)
	b.slow(78, model.Event{PID: 100, TID: 100, Syscall: "poll", FD: 7, PollNFDs: 1, PollFD: 7, PollTimeout: -1,
		FDKnown: true, FDKind: model.FDSocket, Peer: db, Duration: 50 * ms, Ret: 1})
	a := Analyze(b.t, Config{})
	c, ok := connOf(a, "127.0.0.1:13306")
	if !ok || c.Service != "mysql" {
		t.Errorf("connection %+v: want service mysql from the greeting", c)
	}
	stalls := findingsOf(a, model.KindLoopStall)
	if len(stalls) != 1 || stalls[0].Service != "mysql" {
		t.Errorf("stalls %+v: want one naming mysql", stalls)
	}
}

func FuzzProtocol(f *testing.F) {
	f.Add(append(mustHex("5b0000000a"), "5.5.5-10.11.19-MariaDB\x00"...))
	f.Add(mustHex("0000000804d2162f"))
	f.Add([]byte("*1\r\n$4\r\nPING\r\n"))
	f.Add(mustHex("3d000000010000000000000000dd070000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = Protocol(b)
	})
}
