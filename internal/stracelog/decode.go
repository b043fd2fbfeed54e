package stracelog

import (
	"bytes"
	"net/netip"
	"path"
	"strconv"

	"github.com/snagtrace/snag/internal/model"
)

// This file decodes the argument and return-value text of one syscall line.
// Everything here works on byte slices of the line and is only reached for
// the few calls that become events or update the fd table.

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// atoi parses a leading decimal integer (with an optional sign) of s and
// returns it with the number of bytes consumed, 0 when there is none.
func atoi(s []byte) (int64, int) {
	i, neg := 0, false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		i++
	}
	start := i
	var v int64
	for i < len(s) && isDigit(s[i]) && i-start < 19 {
		v = v*10 + int64(s[i]-'0')
		i++
	}
	if i == start {
		return 0, 0
	}
	if neg {
		v = -v
	}
	return v, i
}

// number parses a whole argument as a decimal or 0x hex integer.
func number(s []byte) (uint64, bool) {
	s = bytes.TrimSpace(s)
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		v, err := strconv.ParseUint(string(s[2:]), 16, 64)
		return v, err == nil
	}
	v, n := atoi(s)
	if n == 0 || n != len(s) {
		// An fd with a -y annotation is still a number.
		if n > 0 && n < len(s) && s[n] == '<' {
			return uint64(v), true
		}
		return 0, false
	}
	return uint64(v), true
}

// splitArgs splits argument text at top-level commas into out (reused).
// Brackets, braces, parentheses, quoted strings and -y fd annotations
// (which may nest: "1</dev/null<char 1:3>>") are kept whole.
func splitArgs(s []byte, out [][]byte) [][]byte {
	out = out[:0]
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
		case '<':
			if depth > 0 || (i > 0 && isDigit(s[i-1])) {
				depth++
			}
		case '>':
			if depth > 0 && (i == 0 || s[i-1] != '-') {
				depth--
			}
		case ',':
			if depth == 0 {
				out = append(out, bytes.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if last := bytes.TrimSpace(s[start:]); len(last) > 0 || len(out) > 0 {
		out = append(out, last)
	}
	return out
}

// parseFD reads "5" or "5<TCP:[…]>" and returns the fd and the annotation
// between the outer angle brackets.
func parseFD(s []byte) (fd int, annot []byte, ok bool) {
	s = bytes.TrimSpace(s)
	v, n := atoi(s)
	if n == 0 || v < 0 || v > 1<<31-1 {
		return -1, nil, false
	}
	if n == len(s) || s[n] != '<' {
		return int(v), nil, true
	}
	depth := 0
	for i := n; i < len(s); i++ {
		switch s[i] {
		case '<':
			depth++
		case '>':
			if s[i-1] == '-' {
				continue
			}
			depth--
			if depth == 0 {
				return int(v), s[n+1 : i], true
			}
		}
	}
	return int(v), nil, true
}

// fdInfo is what the log revealed about one open file descriptor.
type fdInfo struct {
	kind        model.FDKind
	nbKnown, nb bool
	local, peer model.Addr
	listening   bool   // listen() succeeded on it
	path        string // what it was opened as
	// fresh: connected in this log and no data seen on it yet, so its
	// first bytes name its protocol, as the live tracer's peek does.
	fresh bool
}

// decodeAnnot reads a -y/-yy annotation: "TCP:[10.0.0.1:4040->10.0.0.5:3306]",
// "UNIX-STREAM:[1->2,\"/run/x.sock\"]", "pipe:[5]", "/var/log/app.log", …
func decodeAnnot(a []byte) (info fdInfo) {
	if len(a) == 0 {
		return info
	}
	if a[0] == '/' {
		// Devices carry a nested "<char 1:3>" or "<block 8:0>".
		if bytes.Contains(a, []byte("<char ")) || bytes.Contains(a, []byte("<block ")) {
			info.kind = model.FDOther
		} else {
			info.kind = model.FDFile
		}
		return info
	}
	colon := bytes.IndexByte(a, ':')
	if colon < 0 {
		info.kind = model.FDOther
		return info
	}
	proto, rest := a[:colon], a[colon+1:]
	switch {
	case bytes.Equal(proto, []byte("pipe")):
		info.kind = model.FDPipe
		return info
	case bytes.Equal(proto, []byte("socket")):
		info.kind = model.FDSocket
		return info
	case bytes.Equal(proto, []byte("anon_inode")):
		info.kind = model.FDOther
		return info
	}
	if len(rest) < 2 || rest[0] != '[' || rest[len(rest)-1] != ']' {
		info.kind = model.FDOther
		return info
	}
	rest = rest[1 : len(rest)-1]
	switch string(proto) {
	case "TCP", "TCPv6", "UDP", "UDPv6", "UDPLITE", "UDPLITEv6", "SCTP", "SCTPv6", "RAW", "RAWv6", "MPTCP", "MPTCPv6":
		info.kind = model.FDSocket
		local, peer, arrow := bytes.Cut(rest, []byte("->"))
		if !arrow && allDigits(local) {
			return info // only the inode: not bound or not yet connected
		}
		info.local = inetEndpoint(local)
		if arrow {
			info.peer = inetEndpoint(peer)
		}
	case "UNIX", "UNIX-STREAM", "UNIX-DGRAM", "UNIX-SEQPACKET":
		info.kind = model.FDSocket
		// "inode[->peer inode][,\"own path\"]": the path is this socket's
		// own name, so it is the local address; the peer is only known to
		// be a unix socket.
		inodes, name, _ := bytes.Cut(rest, []byte{','})
		if len(name) > 0 {
			info.local = model.Addr{Family: model.FamilyUnix, Path: unixPath(name)}
		}
		if bytes.Contains(inodes, []byte("->")) {
			info.peer = model.Addr{Family: model.FamilyUnix}
		}
	case "NETLINK", "PACKET", "VSOCK", "XDP":
		info.kind = model.FDSocket
	default:
		info.kind = model.FDOther
	}
	return info
}

func allDigits(s []byte) bool {
	for _, c := range s {
		if !isDigit(c) {
			return false
		}
	}
	return len(s) > 0
}

// inetEndpoint parses "10.0.0.5:3306" or "[::1]:6379".
func inetEndpoint(s []byte) model.Addr {
	i := bytes.LastIndexByte(s, ':')
	if i <= 0 {
		return model.Addr{}
	}
	port, n := atoi(s[i+1:])
	if n == 0 || port < 0 || port > 65535 {
		return model.Addr{}
	}
	host := s[:i]
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	ip, err := netip.ParseAddr(string(host))
	if err != nil {
		return model.Addr{}
	}
	fam := model.FamilyInet
	if ip.Is6() {
		fam = model.FamilyInet6
		ip = ip.Unmap()
	}
	return model.Addr{Family: fam, IP: ip, Port: uint16(port)}
}

// unixPath turns `"/run/x.sock"` or `@"name"` into "/run/x.sock" or "@name".
func unixPath(s []byte) string {
	s = bytes.TrimSpace(s)
	abstract := len(s) > 0 && s[0] == '@'
	if abstract {
		s = s[1:]
	}
	p, _ := unquote(s)
	if abstract {
		return "@" + p
	}
	return p
}

// unquote decodes a C-escaped strace string, with or without its quotes
// and a trailing "..." truncation mark.
func unquote(s []byte) (string, []byte) {
	if len(s) == 0 || s[0] != '"' {
		return "", s
	}
	var b []byte
	i := 1
	for ; i < len(s) && s[i] != '"'; i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			continue
		}
		i++
		switch e := s[i]; e {
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case 'r':
			b = append(b, '\r')
		case 'v':
			b = append(b, '\v')
		case 'f':
			b = append(b, '\f')
		case 'x':
			v := 0
			for k := 0; k < 2 && i+1 < len(s) && hexVal(s[i+1]) >= 0; k++ {
				i++
				v = v*16 + hexVal(s[i])
			}
			b = append(b, byte(v))
		default:
			if e >= '0' && e <= '7' {
				v := int(e - '0')
				for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
					i++
					v = v*8 + int(s[i]-'0')
				}
				b = append(b, byte(v))
			} else {
				b = append(b, e)
			}
		}
	}
	if i < len(s) {
		i++
	}
	return string(b), s[i:]
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// after returns what follows the first occurrence of key in s.
func after(s []byte, key string) ([]byte, bool) {
	i := bytes.Index(s, []byte(key))
	if i < 0 {
		return nil, false
	}
	return s[i+len(key):], true
}

// decodeSockaddr reads strace's rendering of a struct sockaddr:
// {sa_family=AF_INET, sin_port=htons(3306), sin_addr=inet_addr("10.0.0.5")},
// AF_INET6 with inet_pton(AF_INET6, "::1", &sin6_addr), AF_UNIX with
// sun_path="/run/x.sock" or sun_path=@"abstract".
func decodeSockaddr(s []byte) model.Addr {
	fam, ok := after(s, "sa_family=")
	if !ok {
		return model.Addr{}
	}
	switch {
	case bytes.HasPrefix(fam, []byte("AF_INET6")):
		a := model.Addr{Family: model.FamilyInet6}
		if p, ok := after(fam, "sin6_port=htons("); ok {
			v, _ := atoi(p)
			a.Port = uint16(v)
		}
		if p, ok := after(fam, "inet_pton(AF_INET6, "); ok {
			str, _ := unquote(p)
			if ip, err := netip.ParseAddr(str); err == nil {
				a.IP = ip.Unmap()
			}
		}
		return a
	case bytes.HasPrefix(fam, []byte("AF_INET")):
		a := model.Addr{Family: model.FamilyInet}
		if p, ok := after(fam, "sin_port=htons("); ok {
			v, _ := atoi(p)
			a.Port = uint16(v)
		}
		if p, ok := after(fam, "sin_addr=inet_addr("); ok {
			str, _ := unquote(p)
			if ip, err := netip.ParseAddr(str); err == nil {
				a.IP = ip
			}
		}
		return a
	case bytes.HasPrefix(fam, []byte("AF_UNIX")), bytes.HasPrefix(fam, []byte("AF_LOCAL")):
		a := model.Addr{Family: model.FamilyUnix}
		if p, ok := after(fam, "sun_path="); ok {
			a.Path = unixPath(p)
		}
		return a
	}
	return model.Addr{}
}

// timeoutMS reads a poll-style timeout: an integer in ms, a timespec or
// timeval, or NULL (wait forever, -1).
func timeoutMS(s []byte) int64 {
	s = bytes.TrimSpace(s)
	if len(s) == 0 || bytes.Equal(s, []byte("NULL")) {
		return -1
	}
	if s[0] != '{' {
		v, n := atoi(s)
		if n == 0 {
			return -1
		}
		return v
	}
	var sec, frac int64
	if p, ok := after(s, "tv_sec="); ok {
		sec, _ = atoi(p)
	}
	if p, ok := after(s, "tv_nsec="); ok {
		ns, _ := atoi(p)
		frac = ns / 1e6
	} else if p, ok := after(s, "tv_usec="); ok {
		us, _ := atoi(p)
		frac = us / 1e3
	}
	return sec*1000 + frac
}

// parseFrame reads one -k stack line (without its leading " > "):
// "/lib/x86_64-linux-gnu/libc.so.6(poll+0x4f) [0xfc26f]",
// "/usr/lib/libfoo.so() [0x1234]", "unexpected_backtracing_error [0x7f…]".
func parseFrame(s []byte, intern func([]byte) string) (model.Frame, bool) {
	s = bytes.TrimSpace(s)
	var f model.Frame
	if i := bytes.LastIndex(s, []byte(" [0x")); i >= 0 && s[len(s)-1] == ']' {
		v, err := strconv.ParseUint(string(s[i+4:len(s)-1]), 16, 64)
		if err != nil {
			return f, false
		}
		f.Addr = v
		s = s[:i]
	} else {
		// An unwinder error without an address: the stack stops here.
		f.Kind = model.FrameTruncated
		return f, len(s) > 0
	}
	if len(s) == 0 || s[0] != '/' {
		// "unexpected_backtracing_error" and the like: an unknown frame.
		f.Offset = f.Addr
		return f, true
	}
	open := bytes.IndexByte(s, '(')
	if open < 0 || s[len(s)-1] != ')' {
		f.Path = intern(s)
		f.Module = intern([]byte(path.Base(f.Path)))
		f.Offset = f.Addr
		return f, true
	}
	f.Path = intern(s[:open])
	f.Module = intern([]byte(path.Base(f.Path)))
	sym := s[open+1 : len(s)-1]
	f.Offset = f.Addr
	if plus := bytes.LastIndex(sym, []byte("+0x")); plus >= 0 {
		off, err := strconv.ParseUint(string(sym[plus+3:]), 16, 64)
		name := sym[:plus]
		if err == nil && len(name) > 0 && !bytes.Equal(name, []byte("unknown")) {
			f.Function = intern(name)
			f.Offset = off
		}
	} else if len(sym) > 0 && !bytes.Equal(sym, []byte("unknown")) {
		f.Function = intern(sym)
		f.Offset = 0
	}
	return f, true
}
