package analyzer

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/snagtrace/snag/internal/model"
)

// servicePorts maps well-known server ports to the service usually behind
// them. It names what a peer most likely is; nothing checks the protocol.
var servicePorts = map[uint16]string{
	21: "ftp", 22: "ssh", 25: "smtp", 53: "dns", 80: "http", 110: "pop3",
	123: "ntp", 143: "imap", 389: "ldap", 443: "https", 514: "syslog",
	587: "smtp", 636: "ldaps", 1433: "mssql", 1521: "oracle", 2049: "nfs",
	2181: "zookeeper", 2379: "etcd", 3306: "mysql", 4222: "nats",
	4317: "otlp", 4318: "otlp", 5432: "postgresql", 5601: "kibana",
	5671: "amqps", 5672: "amqp", 6379: "redis", 6432: "pgbouncer",
	6443: "kubernetes", 8080: "http", 8086: "influxdb", 8125: "statsd",
	8443: "https", 8500: "consul", 9042: "cassandra", 9090: "prometheus",
	9092: "kafka", 9200: "elasticsearch", 9300: "elasticsearch",
	11211: "memcached", 15672: "rabbitmq", 26379: "redis-sentinel",
	27017: "mongodb",
}

// serviceSockets recognises the default unix socket paths of common servers.
var serviceSockets = []struct{ substr, service string }{
	{"mysqld.sock", "mysql"},
	{"mysql.sock", "mysql"},
	{".s.PGSQL.", "postgresql"},
	{"redis", "redis"},
	{"memcached", "memcached"},
	{"docker.sock", "docker"},
	{"nscd/socket", "nscd"},
	{"systemd/journal", "journald"},
	{"/dev/log", "syslog"},
}

// Service names the well-known service behind a peer address from its port
// (or its unix socket path), or "" when the port is not a well-known one.
func Service(peer model.Addr) string {
	switch peer.Family {
	case model.FamilyInet, model.FamilyInet6:
		return servicePorts[peer.Port]
	case model.FamilyUnix:
		for _, s := range serviceSockets {
			if strings.Contains(peer.Path, s.substr) {
				return s.service
			}
		}
	}
	return ""
}

// servicePort is the reverse lookup used by --expect, so "db:mysql" works.
func servicePort(name string) (uint16, bool) {
	var best uint16
	for port, svc := range servicePorts {
		// Several ports share a name (http 80 and 8080); take the lowest so
		// the answer does not depend on map order.
		if svc == name && (best == 0 || port < best) {
			best = port
		}
	}
	return best, best != 0
}

// services names peers: by the protocol seen on the wire where snag saw a
// connection's first bytes, else by the well-known port; and, for a peer
// on this host, by the process listening there.
type services struct {
	proto map[model.Addr]string
	owner map[model.Addr]model.Listener
}

func (sv services) of(peer model.Addr) string {
	if s, ok := sv.proto[peer]; ok {
		return s
	}
	return Service(peer)
}

// label renders "127.0.0.1:3306 (mysql, mariadbd pid 4242)", "127.0.0.1:3306
// (mysql)" or just the address.
func (sv services) label(peer model.Addr) string {
	var parts []string
	if svc := sv.of(peer); svc != "" {
		parts = append(parts, svc)
	}
	if l, ok := sv.listener(peer); ok && l.PID != 0 {
		parts = append(parts, fmt.Sprintf("%s pid %d", l.Comm, l.PID))
	}
	if len(parts) == 0 {
		return peer.String()
	}
	return peer.String() + " (" + strings.Join(parts, ", ") + ")"
}

// listener is the local listening socket serving peer: bound to its
// address, or to the wildcard address on its port.
func (sv services) listener(peer model.Addr) (model.Listener, bool) {
	if l, ok := sv.owner[peer]; ok {
		return l, true
	}
	if peer.Family != model.FamilyInet && peer.Family != model.FamilyInet6 {
		return model.Listener{}, false
	}
	for _, any := range []string{"0.0.0.0", "::"} {
		w := peer
		w.IP = netip.MustParseAddr(any)
		w.Family = model.FamilyInet
		if w.IP.Is6() {
			w.Family = model.FamilyInet6
		}
		if l, ok := sv.owner[w]; ok {
			return l, true
		}
	}
	return model.Listener{}, false
}

// spoken names each peer whose first bytes the trace holds by the protocol
// they are in, and each local peer by its listener's process.
func spoken(t *model.Trace) services {
	sv := services{proto: map[model.Addr]string{}, owner: map[model.Addr]model.Listener{}}
	for i := range t.Events {
		ev := &t.Events[i]
		if len(ev.Data) == 0 || ev.Peer.IsZero() {
			continue
		}
		if svc := Protocol(ev.Data); svc != "" {
			sv.proto[ev.Peer] = svc
		}
	}
	for _, l := range t.Listeners {
		sv.owner[l.Addr] = l
	}
	return sv
}

// Protocol recognises a service from the first bytes either side sends on
// a new connection, or returns "". Server-first protocols are recognised by
// their greeting, client-first ones by their opening request.
func Protocol(b []byte) string {
	switch {
	case len(b) >= 5 && b[3] == 0 && b[4] == 10 && int(b[0])|int(b[1])<<8|int(b[2])<<16 >= 20 && printableUntilNUL(b[5:]):
		// MySQL/MariaDB handshake: 3-byte length, sequence 0, protocol 10,
		// then the server's version string.
		return "mysql"
	case len(b) >= 8 && be32(b) >= 8 && (be32(b[4:]) == 196608 || be32(b[4:]) == 80877103 || be32(b[4:]) == 80877104):
		// PostgreSQL StartupMessage (protocol 3.0), SSLRequest or GSSENCRequest.
		return "postgresql"
	case len(b) >= 4 && b[0] == '*' && isDigit(b[1]) && bytes.Contains(b, []byte("\r\n$")):
		return "redis" // a RESP array of bulk strings: a command
	case bytes.HasPrefix(b, []byte("AMQP")):
		return "amqp"
	case len(b) >= 16 && le32(b[12:]) == 2013 && le32(b) >= 16:
		return "mongodb" // OP_MSG header
	case hasAnyPrefix(b, "GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ") && bytes.Contains(b, []byte(" HTTP/1.")),
		bytes.HasPrefix(b, []byte("HTTP/1.")), bytes.HasPrefix(b, []byte("PRI * HTTP/2.0")):
		return "http"
	case len(b) >= 3 && b[0] == 0x16 && b[1] == 3 && b[2] <= 4:
		return "tls" // a TLS handshake record
	case len(b) >= 24 && (b[0] == 0x80 || b[0] == 0x81):
		return "memcached" // binary protocol request or response magic
	case hasAnyPrefix(b, "get ", "gets ", "set ", "add ", "delete ", "incr ", "version\r\n", "stats\r\n"):
		return "memcached"
	}
	return ""
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func le32(b []byte) uint32 {
	return uint32(b[3])<<24 | uint32(b[2])<<16 | uint32(b[1])<<8 | uint32(b[0])
}
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func hasAnyPrefix(b []byte, prefixes ...string) bool {
	for _, p := range prefixes {
		if bytes.HasPrefix(b, []byte(p)) {
			return true
		}
	}
	return false
}

// printableUntilNUL: a version string, "5.5.5-10.11.19-MariaDB-0+deb12u1".
func printableUntilNUL(b []byte) bool {
	n := 0
	for _, c := range b {
		if c == 0 {
			break
		}
		if c < 0x20 || c > 0x7e {
			return false
		}
		n++
	}
	return n >= 3
}
