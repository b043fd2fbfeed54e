package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Limits of the loop's minimal HTTP/1.1 server.
const (
	maxHeaderBytes = 16 << 10
	maxBodyBytes   = 1 << 20
)

// request is the part of an HTTP request the loop acts on.
type request struct {
	method    string
	target    string
	keepAlive bool
}

// httpError is a malformed or unsupported request; status is the answer.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return fmt.Sprintf("%d: %s", e.status, e.msg) }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// parseRequest reads one request from the start of buf. It returns the number
// of bytes the request takes, headers and body, or 0 when buf does not yet
// hold a complete request.
func parseRequest(buf []byte) (request, int, error) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(buf) > maxHeaderBytes {
			return request{}, 0, &httpError{status: http.StatusRequestHeaderFieldsTooLarge, msg: "header too large"}
		}
		return request{}, 0, nil
	}
	if end > maxHeaderBytes {
		return request{}, 0, &httpError{status: http.StatusRequestHeaderFieldsTooLarge, msg: "header too large"}
	}
	lines := strings.Split(string(buf[:end]), "\r\n")
	parts := strings.Split(lines[0], " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return request{}, 0, badRequest("malformed request line %q", lines[0])
	}
	req := request{method: parts[0], target: parts[1]}
	switch parts[2] {
	case "HTTP/1.1":
		req.keepAlive = true
	case "HTTP/1.0":
	default:
		return request{}, 0, &httpError{status: http.StatusHTTPVersionNotSupported, msg: "unsupported protocol " + strconv.Quote(parts[2])}
	}

	bodyLen := 0
	seenLength := false
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.TrimSpace(name) != name {
			return request{}, 0, badRequest("malformed header line %q", line)
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "content-length":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || (seenLength && n != bodyLen) {
				return request{}, 0, badRequest("bad content-length %q", value)
			}
			if n > maxBodyBytes {
				return request{}, 0, &httpError{status: http.StatusRequestEntityTooLarge, msg: "body too large"}
			}
			bodyLen, seenLength = n, true
		case "transfer-encoding":
			return request{}, 0, &httpError{status: http.StatusNotImplemented, msg: "transfer-encoding not supported"}
		case "connection":
			for tok := range strings.SplitSeq(value, ",") {
				switch strings.ToLower(strings.TrimSpace(tok)) {
				case "close":
					req.keepAlive = false
				case "keep-alive":
					req.keepAlive = true
				}
			}
		}
	}
	total := end + 4 + bodyLen
	if len(buf) < total {
		return request{}, 0, nil
	}
	return req, total, nil
}

// appendResponse appends a complete HTTP/1.1 response. For HEAD the body is
// announced in Content-Length but not sent.
func appendResponse(dst []byte, status int, body string, head, keepAlive bool) []byte {
	dst = fmt.Appendf(dst, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n",
		status, http.StatusText(status), len(body))
	if !keepAlive {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	if !head {
		dst = append(dst, body...)
	}
	return dst
}

// errorStatus maps a parse error to the status that answers it.
func errorStatus(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.status
	}
	return http.StatusBadRequest
}
