package analyzer

import (
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

// peerLabel renders "127.0.0.1:3306 (mysql)" or just the address.
func peerLabel(peer model.Addr) string {
	s := peer.String()
	if svc := Service(peer); svc != "" {
		s += " (" + svc + ")"
	}
	return s
}
