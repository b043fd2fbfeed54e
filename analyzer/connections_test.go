package analyzer

import (
	"bytes"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// server is a process that accepts clients on :8000, talks to redis and
// mysql, and had a listening socket and an accepted client at attach.
func server() *builder {
	b := newTrace(10*time.Second).thread(1, 1, "web", time.Second)
	b.calls(1, 1, "epoll_wait", 100, 50*ms)
	b.t.Sockets = append(b.t.Sockets,
		model.Socket{PID: 1, FD: 3, Proto: "tcp", State: "LISTEN", Local: inet("0.0.0.0:8000")},
		model.Socket{PID: 1, FD: 9, Proto: "tcp", State: "ESTABLISHED", Local: inet("10.0.0.1:8000"), Peer: inet("10.0.0.7:51000")},
		model.Socket{PID: 1, FD: 10, Proto: "tcp", State: "ESTABLISHED", Local: inet("10.0.0.1:41000"), Peer: inet("10.0.0.5:6379")},
	)
	for i := range 3 {
		b.event(model.Event{Kind: model.EvAccept, PID: 1, TID: 1, Syscall: "accept4", FD: 3,
			Local: inet("10.0.0.1:8000"), Peer: netipPort("10.0.0.8", 52000+i)})
	}
	b.event(model.Event{Kind: model.EvConnect, PID: 1, TID: 1, Syscall: "connect", FD: 11, Ret: -115, Peer: inet("10.0.0.6:3306")})
	b.event(model.Event{Kind: model.EvSendTo, PID: 1, TID: 1, Syscall: "sendto", FD: 12, Peer: inet("127.0.0.53:53")})
	// A request's recv on an accepted client socket is not an outbound peer.
	b.slow(1, model.Event{PID: 1, TID: 1, Syscall: "recvfrom", FD: 13, FDKnown: true, NonBlock: true, FDKind: model.FDSocket, Local: inet("10.0.0.1:8000"), Peer: netipPort("10.0.0.8", 52001), Duration: 11 * ms})
	return b
}

func netipPort(ip string, port int) model.Addr {
	return model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr(ip), Port: uint16(port)}
}

func TestConnectionInventory(t *testing.T) {
	a := Analyze(server().t, Config{})
	var got []string
	for _, c := range a.Connections {
		got = append(got, c.Peer.String()+"/"+c.Service)
		if !c.Expected {
			t.Errorf("%s unexpected without expectations", c.Peer)
		}
	}
	want := []string{"10.0.0.6:3306/mysql", "127.0.0.53:53/dns", "10.0.0.5:6379/redis", "10.0.0.8:0/", "10.0.0.7:0/"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("inventory = %q, want %q", got, want)
	}
	if c, _ := connOf(a, "10.0.0.8:0"); c.Accepts != 3 {
		t.Errorf("accepted clients = %+v", c)
	}
	if c, _ := connOf(a, "10.0.0.5:6379"); !c.BeforeAttach || c.FirstSeen != 1_000_000 {
		t.Errorf("redis at attach = %+v", c)
	}
	if len(a.Findings) != 0 {
		t.Errorf("findings without expectations: %+v", a.Findings)
	}
}

func TestUnexpectedConnections(t *testing.T) {
	tests := []struct {
		name   string
		expect string
		base   []string
		want   []string // unexpected peers
	}{
		{"everything expected", "10.0.0.5:6379,10.0.0.6:mysql,127.0.0.53:53", nil, nil},
		{"any port of a host", "10.0.0.5,10.0.0.6,127.0.0.53", nil, nil},
		{"wildcard host", "*:6379,*:3306,*:53", nil, nil},
		{"localhost matches loopback only", "localhost:53", nil, []string{"10.0.0.5:6379", "10.0.0.6:3306"}},
		{"loopback dns is not special", "10.0.0.5:6379,10.0.0.6:3306", nil, []string{"127.0.0.53:53"}},
		{"unresolvable name matches nothing", "cache.local:6379", nil, []string{"10.0.0.5:6379", "10.0.0.6:3306", "127.0.0.53:53"}},
		{"resolved name", "redis.local:6379,db.local:3306,localhost:53", nil, nil},
		{"baseline only", "", []string{"10.0.0.5:6379", "127.0.0.53:53"}, []string{"10.0.0.6:3306"}},
		{"expect and baseline", "*:*", []string{"10.0.0.5:6379", "10.0.0.6:3306"}, []string{"127.0.0.53:53"}},
	}
	resolve := func(host string) []netip.Addr {
		return map[string][]netip.Addr{
			"redis.local": {netip.MustParseAddr("10.0.0.5")},
			"db.local":    {netip.MustParseAddr("::ffff:10.0.0.6")},
		}[host]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			cfg.Resolve = resolve
			if tt.expect != "" {
				eps, err := ParseExpect(tt.expect)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Expect = eps
			}
			if tt.base != nil {
				cfg.Baseline = &Baseline{Schema: BaselineSchema}
				for _, p := range tt.base {
					cfg.Baseline.Peers = append(cfg.Baseline.Peers, BaselinePeer{Peer: p})
				}
			}
			var got []string
			for _, f := range findingsOf(Analyze(server().t, cfg), model.KindUnexpectedConnection) {
				got = append(got, f.Peer)
				if f.Severity != model.SeverityMedium {
					t.Errorf("%s severity = %s, want medium", f.Peer, f.Severity)
				}
			}
			slices.Sort(got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("unexpected = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConnectionChurn(t *testing.T) {
	tests := []struct {
		name     string
		connects int
		each     time.Duration
		want     model.Severity
	}{
		{"a few reconnects", 9, ms, 0},
		{"ten in ten seconds", 10, ms, model.SeverityMedium},
		{"a connect per request", 150, 100 * time.Microsecond, model.SeverityHigh},
		{"slow connects", 20, 30 * ms, model.SeverityHigh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTrace(10*time.Second).thread(1, 1, "app", 0)
			for range tt.connects {
				b.event(model.Event{Kind: model.EvConnect, PID: 1, TID: 1, Syscall: "connect", FD: 7,
					Peer: inet("10.1.1.1:5432"), Duration: tt.each})
			}
			churn := findingsOf(Analyze(b.t, Config{}), model.KindConnectionChurn)
			if tt.want == 0 {
				if len(churn) != 0 {
					t.Errorf("churn = %+v, want none", churn)
				}
				return
			}
			if len(churn) != 1 || churn[0].Severity != tt.want || churn[0].Count != uint64(tt.connects) {
				t.Fatalf("churn = %+v, want one %s", churn, tt.want)
			}
			if !strings.Contains(churn[0].Hint, "CONN_MAX_AGE") || strings.Contains(churn[0].Detail, "median") {
				t.Errorf("hint/detail = %q / %q", churn[0].Hint, churn[0].Detail)
			}
		})
	}
}

// A connection's lifetime runs from its connect to the first close of its
// fd after it, however the close was seen: a close event (live: every
// close of a socket opened while tracing), a close call (strace logs,
// recordings at threshold 0), or both at once for a slow close.
func TestConnectionLifetimeFromCloses(t *testing.T) {
	closeEvent := func(fd int, d time.Duration) []model.Event {
		return []model.Event{{Kind: model.EvClose, PID: 1, TID: 1, Syscall: "close", FD: fd, FDKind: model.FDSocket, Duration: d}}
	}
	closeCall := func(fd int, d time.Duration) []model.Event {
		return []model.Event{{PID: 1, TID: 1, Syscall: "close", FD: fd, Duration: d}}
	}
	slowClose := func(fd int, d time.Duration) []model.Event {
		return append(closeEvent(fd, d), closeCall(fd, d)...)
	}
	for _, tt := range []struct {
		name  string
		close func(fd int, d time.Duration) []model.Event
	}{
		{"close events", closeEvent},
		{"close calls", closeCall},
		{"slow closes seen both ways", slowClose},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newTrace(10*time.Second).thread(1, 1, "app", 0)
			for i := range 20 {
				fd := 7 + i%2
				b.event(model.Event{Kind: model.EvConnect, PID: 1, TID: 1, Syscall: "connect", FD: fd,
					Peer: inet("10.1.1.1:5432"), Duration: 100 * time.Microsecond})
				b.now += uint64(5 * ms)
				at := b.now
				for _, ev := range tt.close(fd, 20*time.Microsecond) {
					ev.Time = at
					b.event(ev)
				}
				b.now += uint64(100 * ms)
			}
			churn := findingsOf(Analyze(b.t, Config{}), model.KindConnectionChurn)
			if len(churn) != 1 {
				t.Fatalf("churn = %+v, want one finding", churn)
			}
			if !strings.Contains(churn[0].Detail, "median 5.00ms (20 closes seen)") {
				t.Errorf("detail = %q, want each connection living 5ms, 20 closes seen", churn[0].Detail)
			}
		})
	}
}

func TestBaselineRoundTrip(t *testing.T) {
	a := Analyze(server().t, Config{})
	base := NewBaseline(a)
	var buf bytes.Buffer
	if err := base.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBaseline(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, base) {
		t.Errorf("round trip = %+v, want %+v", got, base)
	}
	want := []BaselinePeer{{"10.0.0.5:6379", "redis"}, {"10.0.0.6:3306", "mysql"}, {"127.0.0.53:53", "dns"}}
	if !reflect.DeepEqual(got.Peers, want) {
		t.Errorf("peers = %+v, want %+v (accepted clients left out)", got.Peers, want)
	}
	// The same run against its own baseline has nothing unexpected; a new
	// peer stands out.
	b := server()
	if n := len(findingsOf(Analyze(b.t, Config{Baseline: got}), model.KindUnexpectedConnection)); n != 0 {
		t.Errorf("%d unexpected against own baseline", n)
	}
	b.event(model.Event{Kind: model.EvConnect, PID: 1, TID: 1, Syscall: "connect", FD: 20, Peer: inet("10.9.9.9:9092")})
	un := findingsOf(Analyze(b.t, Config{Baseline: got}), model.KindUnexpectedConnection)
	if len(un) != 1 || un[0].Peer != "10.9.9.9:9092" || !strings.Contains(un[0].Detail, "baseline") {
		t.Errorf("new peer = %+v", un)
	}
}

func TestReadBaselineErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`{"schema":"snag-baseline/v2","peers":[]}`,
		`{"schema":"snag-baseline/v1","peers":[{"peer":""}]}`,
		`{"schema":"snag-baseline/v1","peers":[],"extra":1}`,
		`[1,2]`,
	} {
		if _, err := ReadBaseline(strings.NewReader(in)); err == nil {
			t.Errorf("ReadBaseline(%q) succeeded", in)
		}
	}
	if b := NewBaseline(nil); b.Schema != BaselineSchema || len(b.Peers) != 0 {
		t.Errorf("NewBaseline(nil) = %+v", b)
	}
}

func TestUnixConnectToMissingSocketIsNoPeer(t *testing.T) {
	b := newTrace(time.Second).process(500, "python3").thread(500, 500, "python3", 0)
	nscd := model.Addr{Family: model.FamilyUnix, Path: "/var/run/nscd/socket"}
	b.t.Events = append(b.t.Events, model.Event{Kind: model.EvConnect, PID: 500, TID: 500, Syscall: "connect", FD: 5, Peer: nscd, Ret: -2, Time: b.t.StartNS + 1})
	a := Analyze(b.t, Config{Expect: []Endpoint{{Host: "127.0.0.1", Port: 6379}}})
	if _, ok := connOf(a, nscd.String()); ok {
		t.Errorf("a connect that found no socket is in the inventory")
	}
	if f := findingsOf(a, model.KindUnexpectedConnection); len(f) != 0 {
		t.Errorf("unexpected connection to a missing socket: %+v", f)
	}
}
