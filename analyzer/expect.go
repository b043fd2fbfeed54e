package analyzer

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/snagtrace/snag/internal/model"
)

// Endpoint is one expected peer. Host is a name ("localhost", "db.local"),
// an IP literal, "*" for any host, or "unix:PATH" for a unix socket. Port 0
// matches any port.
type Endpoint struct {
	Host string
	Port uint16
}

func (e Endpoint) String() string {
	if strings.HasPrefix(e.Host, "unix:") {
		return e.Host
	}
	port := "*"
	if e.Port != 0 {
		port = strconv.Itoa(int(e.Port))
	}
	if strings.Contains(e.Host, ":") {
		return "[" + e.Host + "]:" + port
	}
	return e.Host + ":" + port
}

// ParseExpect reads a comma-separated list of endpoints:
// "127.0.0.1:3306,db.local:5432,[::1]:6379,unix:/run/x.sock". A port may be
// a number, "*", or a service name ("db.local:mysql"); a host without a port
// matches every port of that host.
func ParseExpect(list string) ([]Endpoint, error) {
	var eps []Endpoint
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ep, err := parseEndpoint(item)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// maxExpectLine bounds a line of an expect file: a few dozen endpoints.
const maxExpectLine = 4096

// ReadExpectFile reads endpoints one per line (or several separated by
// commas); '#' starts a comment.
func ReadExpectFile(r io.Reader) ([]Endpoint, error) {
	var eps []Endpoint
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if len(line) > maxExpectLine || strings.IndexByte(line, 0) >= 0 || !utf8.ValidString(line) {
			// Binary, most likely: an error quoting the line would be
			// as unreadable as the file.
			return nil, fmt.Errorf("line %d: not a list of HOST:PORT (%d bytes, binary?)", n, len(line))
		}
		got, err := ParseExpect(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		eps = append(eps, got...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read expect file: %w", err)
	}
	return eps, nil
}

func parseEndpoint(s string) (Endpoint, error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if path == "" {
			return Endpoint{}, fmt.Errorf("endpoint %q: empty unix socket path", s)
		}
		return Endpoint{Host: s}, nil
	}
	// A bare IPv6 literal has colons but no port.
	if a, err := netip.ParseAddr(s); err == nil {
		return Endpoint{Host: a.String()}, nil
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Endpoint{}, fmt.Errorf("endpoint %q: missing ']'", s)
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			p, ok := strings.CutPrefix(port, ":")
			if !ok {
				return Endpoint{}, fmt.Errorf("endpoint %q: want [addr]:port", s)
			}
			port = p
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return Endpoint{}, fmt.Errorf("endpoint %q: bad IPv6 address: %w", s, err)
		}
	case strings.Contains(s, ":"):
		i := strings.LastIndexByte(s, ':')
		host, port = s[:i], s[i+1:]
	}
	if host == "" {
		host = "*"
	}
	if strings.ContainsAny(host, " \t/[]") || strings.Contains(host, ":") && !isIP(host) {
		return Endpoint{}, fmt.Errorf("endpoint %q: bad host %q", s, host)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String() // canonical form, so matching compares like with like
	}
	ep := Endpoint{Host: strings.ToLower(host)}
	switch port {
	case "", "*":
	default:
		n, err := strconv.ParseUint(port, 10, 16)
		if err == nil {
			ep.Port = uint16(n)
			break
		}
		p, ok := servicePort(strings.ToLower(port))
		if !ok {
			return Endpoint{}, fmt.Errorf("endpoint %q: bad port %q", s, port)
		}
		ep.Port = p
	}
	return ep, nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// matcher answers whether a peer is covered by a list of endpoints,
// resolving each host name at most once.
type matcher struct {
	eps      []Endpoint
	resolve  func(host string) []netip.Addr
	resolved map[string][]netip.Addr
}

func newMatcher(eps []Endpoint, resolve func(string) []netip.Addr) *matcher {
	return &matcher{eps: eps, resolve: resolve, resolved: map[string][]netip.Addr{}}
}

func (m *matcher) match(peer model.Addr) bool {
	for _, ep := range m.eps {
		if m.matchOne(ep, peer) {
			return true
		}
	}
	return false
}

func (m *matcher) matchOne(ep Endpoint, peer model.Addr) bool {
	if peer.Family == model.FamilyUnix {
		return ep.Host == "*" || ep.Host == "unix:"+peer.Path
	}
	if ep.Port != 0 && ep.Port != peer.Port {
		return false
	}
	if ep.Host == "*" {
		return true
	}
	ip := peer.IP.Unmap()
	if a, err := netip.ParseAddr(ep.Host); err == nil {
		return a.Unmap() == ip
	}
	if ep.Host == "localhost" && ip.IsLoopback() {
		return true
	}
	for _, a := range m.lookup(ep.Host) {
		if a.Unmap() == ip {
			return true
		}
	}
	return false
}

func (m *matcher) lookup(host string) []netip.Addr {
	if m.resolve == nil || strings.HasPrefix(host, "unix:") {
		return nil
	}
	if addrs, ok := m.resolved[host]; ok {
		return addrs
	}
	addrs := m.resolve(host)
	m.resolved[host] = addrs
	return addrs
}
