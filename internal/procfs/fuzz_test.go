package procfs

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

// addFileLines seeds f with every line of a testdata file.
func addFileLines(f *testing.F, path string) {
	f.Helper()
	file, err := os.Open(path)
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(sc.Text())
	}
}

func FuzzParseInetLine(f *testing.F) {
	for _, name := range []string{"tcp", "tcp6", "udp", "udp6"} {
		addFileLines(f, "testdata/proc/14822/net/"+name)
	}
	f.Add("   0: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431 01 0:0 0:0 0 0 0 6")
	f.Fuzz(func(t *testing.T, line string) {
		for _, udp := range []bool{false, true} {
			e, err := parseInetLine(line, udp)
			if err != nil {
				continue
			}
			if e.Local.Family != model.FamilyInet && e.Local.Family != model.FamilyInet6 {
				t.Fatalf("local family %q", e.Local.Family)
			}
			if e.Local.Family == model.FamilyInet != e.Local.IP.Is4() {
				t.Fatalf("family %q with IP %v", e.Local.Family, e.Local.IP)
			}
			if !e.Peer.IsZero() && !e.Peer.IP.IsValid() {
				t.Fatalf("peer without IP: %+v", e.Peer)
			}
			if e.State == "" {
				t.Fatal("empty state")
			}
		}
	})
}

func FuzzParseUnixLine(f *testing.F) {
	addFileLines(f, "testdata/proc/14822/net/unix")
	f.Add("0: 00000002 00000000 00010000 0001 01 25031 /tmp/a b\tc")
	f.Fuzz(func(t *testing.T, line string) {
		e, err := parseUnixLine(line)
		if err != nil {
			return
		}
		if e.Local.Family != model.FamilyUnix || e.State == "" {
			t.Fatalf("got %+v", e)
		}
		if !strings.HasSuffix(line, e.Local.Path) {
			t.Fatalf("path %q is not the end of line %q", e.Local.Path, line)
		}
	})
}

func FuzzParseMapsLine(f *testing.F) {
	addFileLines(f, "testdata/proc/14822/maps")
	f.Add("7ffd1000-7ffd3000 r-xp 00000000 00:00 0                          [vdso]")
	f.Add("7f00-7f10 r--p 00000000 fd:01 12 /path with spaces/lib.so (deleted)")
	f.Fuzz(func(t *testing.T, line string) {
		m, err := parseMapsLine(line)
		if err != nil {
			return
		}
		if !strings.HasSuffix(line, m.Path) {
			t.Fatalf("path %q is not the end of line %q", m.Path, line)
		}
	})
}

func FuzzParseStat(f *testing.F) {
	for _, p := range []string{"14822/stat", "14822/task/14824/stat", "14825/stat"} {
		b, err := os.ReadFile("testdata/proc/" + p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStat([]byte(s))
		if err != nil {
			return
		}
		if !strings.Contains(s, "("+st.Comm+")") {
			t.Fatalf("comm %q not in %q", st.Comm, s)
		}
	})
}

func FuzzParseSyscall(f *testing.F) {
	for _, p := range []string{"14822/task/14822/syscall", "14822/task/14824/syscall"} {
		b, err := os.ReadFile("testdata/proc/" + p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("running\n")
	f.Add("-1 0x7ffd1000 0x401000\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, arch := range []string{"amd64", "arm64"} {
			bs, err := ParseSyscall(s, arch)
			if err != nil {
				continue
			}
			if bs.Running && bs.Nr != -1 || bs.Nr < -1 || bs.FD < -1 && bs.Syscall == "" {
				t.Fatalf("inconsistent %+v", bs)
			}
		}
	})
}
