package loggen

import (
	"bytes"
	"testing"
)

func TestGenerateLog(t *testing.T) {
	var a, b, c bytes.Buffer
	if err := GenerateLog(&a, 1<<20, 7); err != nil {
		t.Fatal(err)
	}
	GenerateLog(&b, 1<<20, 7)
	GenerateLog(&c, 1<<20, 8)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("same seed, different logs")
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("different seeds, same log")
	}
	if n := a.Len(); n < 1<<20 || n > 1<<20+8<<10 {
		t.Errorf("size %d", n)
	}
	if a.Bytes()[a.Len()-1] != '\n' {
		t.Error("last line cut")
	}
	for _, want := range []string{"<unfinished ...>", "<... futex resumed>", "connect(9<TCP:", "epoll_wait(4<anon_inode:[eventpoll]>"} {
		if !bytes.Contains(a.Bytes(), []byte(want)) {
			t.Errorf("no %q", want)
		}
	}
}
