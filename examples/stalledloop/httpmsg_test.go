package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   request
		n      int // bytes consumed; 0 means incomplete
		status int // non-zero: an error answered with this status
	}{
		{
			name: "http/1.1 keeps alive",
			in:   "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
			want: request{method: "GET", target: "/", keepAlive: true},
			n:    27,
		},
		{
			name: "http/1.0 closes",
			in:   "GET /a?b HTTP/1.0\r\n\r\n",
			want: request{method: "GET", target: "/a?b"},
			n:    21,
		},
		{
			name: "connection close token",
			in:   "GET / HTTP/1.1\r\nConnection: TE, Close\r\n\r\n",
			want: request{method: "GET", target: "/"},
			n:    41,
		},
		{
			name: "http/1.0 keep-alive",
			in:   "HEAD / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n",
			want: request{method: "HEAD", target: "/", keepAlive: true},
			n:    43,
		},
		{
			name: "body is consumed",
			in:   "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET",
			want: request{method: "POST", target: "/", keepAlive: true},
			n:    41,
		},
		{name: "headers incomplete", in: "GET / HTTP/1.1\r\nHost: x\r\n"},
		{name: "body incomplete", in: "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"},
		{name: "empty", in: ""},
		{name: "bad request line", in: "GET /\r\n\r\n", status: http.StatusBadRequest},
		{name: "empty method", in: " / HTTP/1.1\r\n\r\n", status: http.StatusBadRequest},
		{name: "unknown protocol", in: "GET / HTTP/2.0\r\n\r\n", status: http.StatusHTTPVersionNotSupported},
		{name: "header without colon", in: "GET / HTTP/1.1\r\nHost\r\n\r\n", status: http.StatusBadRequest},
		{name: "space before colon", in: "GET / HTTP/1.1\r\nHost : x\r\n\r\n", status: http.StatusBadRequest},
		{name: "negative length", in: "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", status: http.StatusBadRequest},
		{name: "conflicting lengths", in: "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", status: http.StatusBadRequest},
		{name: "body too large", in: "POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", status: http.StatusRequestEntityTooLarge},
		{name: "chunked", in: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", status: http.StatusNotImplemented},
		{name: "endless header", in: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxHeaderBytes), status: http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, err := parseRequest([]byte(tt.in))
			if tt.status != 0 {
				if err == nil {
					t.Fatalf("parseRequest = %+v, %d, nil; want status %d", got, n, tt.status)
				}
				if s := errorStatus(err); s != tt.status {
					t.Fatalf("status %d (%v), want %d", s, err, tt.status)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRequest: %v", err)
			}
			if n != tt.n || got != tt.want {
				t.Fatalf("parseRequest = %+v, %d; want %+v, %d", got, n, tt.want, tt.n)
			}
		})
	}
}

func TestAppendResponse(t *testing.T) {
	tests := []struct {
		name            string
		head, keepAlive bool
		want            string
	}{
		{"get keep-alive", false, true, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\nhi\n"},
		{"get close", false, false, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nConnection: close\r\n\r\nhi\n"},
		{"head", true, true, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendResponse(nil, http.StatusOK, "hi\n", tt.head, tt.keepAlive)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
		"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		req, n, err := parseRequest(in)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with %d bytes consumed", err, n)
			}
			if s := errorStatus(err); s < 400 || s > 599 {
				t.Fatalf("error %v maps to status %d", err, s)
			}
			return
		}
		if n == 0 {
			return
		}
		if n > len(in) {
			t.Fatalf("consumed %d of %d bytes", n, len(in))
		}
		if !bytes.Contains(in[:n], []byte("\r\n\r\n")) {
			t.Fatalf("consumed %q without a header terminator", in[:n])
		}
		if req.method == "" || req.target == "" {
			t.Fatalf("accepted %q with an empty method or target", in[:n])
		}
		// Parsing is a pure function of the request's own bytes.
		again, n2, err := parseRequest(append(bytes.Clone(in[:n]), "GARBAGE"...))
		if err != nil || n2 != n || again != req {
			t.Fatalf("trailing bytes changed the result: %+v %d %v", again, n2, err)
		}
	})
}
