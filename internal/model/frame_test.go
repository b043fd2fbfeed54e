package model

import "testing"

func TestFrameString(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Frame
		want string
	}{
		{"native", Frame{Function: "poll", Module: "libc.so.6"}, "poll (libc.so.6)"},
		{"interpreter with line", Frame{Function: "handleRequest", Module: "app.js", Line: 7, Kind: FrameInterpreter}, "handleRequest (app.js:7)"},
		{"interpreter without line", Frame{Function: "get_user", Module: "views.py", Kind: FrameInterpreter}, "get_user (views.py)"},
		{"no symbol", Frame{Module: "libfoo.so", Offset: 0x1a}, "libfoo.so+0x1a"},
		{"nothing known", Frame{Addr: 0x7f7430027275}, "[unknown 0x7f7430027275]"},
		{"truncated", Frame{Kind: FrameTruncated}, "[truncated]"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
