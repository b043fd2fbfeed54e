package analyzer

import (
	"reflect"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func TestParseExpect(t *testing.T) {
	tests := []struct {
		in   string
		want []Endpoint
		err  bool
	}{
		{in: "127.0.0.1:3306,db.local:5432,[::1]:6379,unix:/run/x.sock", want: []Endpoint{
			{"127.0.0.1", 3306}, {"db.local", 5432}, {"::1", 6379}, {"unix:/run/x.sock", 0}}},
		{in: " DB.Local:mysql , *:53 ", want: []Endpoint{{"db.local", 3306}, {"*", 53}}},
		{in: ":6379", want: []Endpoint{{"*", 6379}}},
		{in: "10.0.0.1", want: []Endpoint{{"10.0.0.1", 0}}},
		{in: "10.0.0.1:*", want: []Endpoint{{"10.0.0.1", 0}}},
		{in: "::1", want: []Endpoint{{"::1", 0}}},
		{in: "[::ffff:10.0.0.1]", want: []Endpoint{{"::ffff:10.0.0.1", 0}}},
		{in: "", want: nil},
		{in: "host:99999", err: true},
		{in: "host:nosuchservice", err: true},
		{in: "[::1", err: true},
		{in: "[::1]6379", err: true},
		{in: "[nothost]:1", err: true},
		{in: "unix:", err: true},
		{in: "a b:80", err: true},
		{in: "fe80::1::2:80", err: true},
	}
	for _, tt := range tests {
		got, err := ParseExpect(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("ParseExpect(%q) error = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseExpect(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestReadExpectFile(t *testing.T) {
	in := "# backends\n127.0.0.1:5672  # broker\n\nredis.local:6379, unix:/run/mysqld/mysqld.sock\n"
	got, err := ReadExpectFile(strings.NewReader(in))
	want := []Endpoint{{"127.0.0.1", 5672}, {"redis.local", 6379}, {"unix:/run/mysqld/mysqld.sock", 0}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadExpectFile = %+v, %v; want %+v", got, err, want)
	}
	if _, err := ReadExpectFile(strings.NewReader("ok:1\nbad:port\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error = %v, want one naming line 2", err)
	}
}

func TestEndpointMatch(t *testing.T) {
	unix := model.Addr{Family: model.FamilyUnix, Path: "/run/x.sock"}
	tests := []struct {
		ep   Endpoint
		peer model.Addr
		want bool
	}{
		{Endpoint{"127.0.0.1", 3306}, inet("127.0.0.1:3306"), true},
		{Endpoint{"127.0.0.1", 3306}, inet("127.0.0.1:3307"), false},
		{Endpoint{"127.0.0.1", 0}, inet("[::ffff:127.0.0.1]:1"), true},
		{Endpoint{"localhost", 0}, inet("[::1]:80"), true},
		{Endpoint{"localhost", 0}, inet("10.0.0.1:80"), false},
		{Endpoint{"*", 0}, unix, true},
		{Endpoint{"unix:/run/x.sock", 0}, unix, true},
		{Endpoint{"unix:/run/y.sock", 0}, unix, false},
		{Endpoint{"db.local", 0}, inet("10.0.0.1:5432"), false}, // no resolver
	}
	for _, tt := range tests {
		if got := newMatcher([]Endpoint{tt.ep}, nil).match(tt.peer); got != tt.want {
			t.Errorf("%v matches %v = %v, want %v", tt.ep, tt.peer, got, tt.want)
		}
	}
}

func TestService(t *testing.T) {
	tests := []struct {
		peer model.Addr
		want string
	}{
		{inet("127.0.0.1:3306"), "mysql"},
		{inet("[::1]:5432"), "postgresql"},
		{inet("10.0.0.1:6379"), "redis"},
		{inet("10.0.0.1:11211"), "memcached"},
		{inet("10.0.0.1:5672"), "amqp"},
		{inet("10.0.0.1:9092"), "kafka"},
		{inet("10.0.0.1:27017"), "mongodb"},
		{inet("127.0.0.53:53"), "dns"},
		{inet("10.0.0.1:8080"), "http"},
		{inet("10.0.0.1:443"), "https"},
		{inet("10.0.0.1:9200"), "elasticsearch"},
		{inet("10.0.0.1:2181"), "zookeeper"},
		{inet("10.0.0.1:40123"), ""},
		{model.Addr{Family: model.FamilyUnix, Path: "/run/mysqld/mysqld.sock"}, "mysql"},
		{model.Addr{Family: model.FamilyUnix, Path: "/tmp/.s.PGSQL.5432"}, "postgresql"},
		{model.Addr{}, ""},
	}
	for _, tt := range tests {
		if got := Service(tt.peer); got != tt.want {
			t.Errorf("Service(%v) = %q, want %q", tt.peer, got, tt.want)
		}
	}
	if p, ok := servicePort("http"); !ok || p != 80 {
		t.Errorf("servicePort(http) = %d, %v", p, ok)
	}
}

func TestLibrary(t *testing.T) {
	tests := []struct {
		stack []model.Frame
		want  string
	}{
		{mariadbStack, "libmariadb.so.3"},
		{frames("recv@libc.so.6", "sock_recv@_socket.cpython-311-x86_64-linux-gnu.so"), "_socket.cpython-311-x86_64-linux-gnu.so"},
		{append([]model.Frame{{Kind: model.FrameKernel, Function: "do_sys_poll"}}, frames("poll@libc.so.6", "memcached_io_wait@libmemcached.so.11")...), "libmemcached.so.11"},
		{frames("poll@libc.so.6"), ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := library(tt.stack); got != tt.want {
			t.Errorf("library(%v) = %q, want %q", tt.stack, got, tt.want)
		}
	}
}
