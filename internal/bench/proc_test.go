package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A raw tracepoint link's fdinfo as Linux 6.18 prints it.
const linkFdinfo = "pos:\t0\nflags:\t02000000\nmnt_id:\t17\nino:\t1038\nlink_type:\traw_tracepoint\nlink_id:\t370\nprog_tag:\t5879a2deee083eaf\nprog_id:\t455\ntp_name:\tsys_enter\ncookie:\t0\n"

func TestRawTracepointLink(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		tp     string
		progID uint32
		ok     bool
	}{
		{"raw tracepoint link", linkFdinfo, "sys_enter", 455, true},
		{"program fd", "pos:\t0\nflags:\t02000002\nprog_type:\t17\nprog_jited:\t1\nprog_tag:\t5879a2deee083eaf\nprog_id:\t455\nrun_time_ns:\t0\nrun_cnt:\t0\n", "", 0, false},
		{"tracing link", "link_type:\ttracing\nlink_id:\t3\nprog_id:\t9\nattach_type:\t24\n", "", 0, false},
		{"no program id", "link_type:\traw_tracepoint\ntp_name:\tsys_exit\n", "", 0, false},
		{"bad program id", "link_type:\traw_tracepoint\nprog_id:\tx\ntp_name:\tsys_exit\n", "", 0, false},
		{"regular file", "pos:\t0\nflags:\t0100000\nmnt_id:\t21\nino:\t12\n", "", 0, false},
		{"empty", "", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, id, ok := rawTracepointLink([]byte(tc.in))
			if tp != tc.tp || id != tc.progID || ok != tc.ok {
				t.Errorf("rawTracepointLink = %q, %d, %v; want %q, %d, %v", tp, id, ok, tc.tp, tc.progID, tc.ok)
			}
		})
	}
}

func TestParseSchedstat(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"5813775 1343171 18\n", 5813775, false},
		{"0 0 0\n", 0, false},
		{"", 0, true},
		{"-1 2 3", 0, true},
		{"abc 2 3", 0, true},
	} {
		got, err := parseSchedstat([]byte(tc.in))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseSchedstat(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseTracerPid(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"Name:\tredis-server\nState:\tS (sleeping)\nTgid:\t10\nPid:\t10\nPPid:\t1\nTracerPid:\t4242\nUid:\t0\n", 4242, false},
		{"Name:\tx\nTracerPid:\t0\n", 0, false},
		{"Name:\tx\n", 0, true},
		{"TracerPid:\tnope\n", 0, true},
	} {
		got, err := parseTracerPid([]byte(tc.in))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseTracerPid(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// fakeProc builds a /proc with one process, 100, of two threads.
func fakeProc(t *testing.T, tracer [2]string, fdinfo map[string]string) {
	t.Helper()
	root := t.TempDir()
	for i, tid := range []string{"100", "101"} {
		dir := filepath.Join(root, "100", "task", tid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "status"), "Name:\tw\nTracerPid:\t"+tracer[i]+"\n")
		write(t, filepath.Join(dir, "schedstat"), []string{"1500000000 7 3\n", "250000000 1 1\n"}[i])
	}
	dir := filepath.Join(root, "100", "fdinfo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for fd, text := range fdinfo {
		write(t, filepath.Join(dir, fd), text)
	}
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestProcessReaders(t *testing.T) {
	fakeProc(t, [2]string{"7", "7"}, map[string]string{
		"0":  "pos:\t0\nflags:\t02\n",
		"5":  linkFdinfo,
		"12": "link_type:\traw_tracepoint\nprog_id:\t456\ntp_name:\tsys_exit\n",
	})
	cpu, err := cpuTime(100)
	if err != nil || cpu != 1750*time.Millisecond {
		t.Errorf("cpuTime = %s, %v; want 1.75s summed over threads", cpu, err)
	}
	links, err := rawTracepointLinks(100)
	if err != nil || len(links) != 2 || links["sys_enter"] != 455 || links["sys_exit"] != 456 {
		t.Errorf("rawTracepointLinks = %v, %v; want sys_enter 455 and sys_exit 456", links, err)
	}
	if ok, err := tracedBy(100, 7); !ok || err != nil {
		t.Errorf("tracedBy(100, 7) = %v, %v; want true", ok, err)
	}
	if ok, err := tracedBy(100, 8); ok || err != nil {
		t.Errorf("tracedBy(100, 8) = %v, %v; want false", ok, err)
	}
	if _, err := cpuTime(999); err == nil {
		t.Error("cpuTime of a missing process: no error")
	}
}

func TestTracedByPartial(t *testing.T) {
	// strace attaches thread by thread: one thread is not yet traced.
	fakeProc(t, [2]string{"7", "0"}, nil)
	if ok, err := tracedBy(100, 7); ok || err != nil {
		t.Errorf("tracedBy = %v, %v; want false until every thread is attached", ok, err)
	}
}

func TestCPUTimes(t *testing.T) {
	const stat = "cpu  164620 325 71887 194612 1668 0 2335 436 0 0\ncpu0 81267 138 25494 108168 559 0 1213 219 0 0\ncpu1 83353 186 46393 86444 1109 0 1122 217 0 0\nintr 1\n"
	for _, tc := range []struct {
		name        string
		stat        string
		cpu         int
		busy, total uint64
		wantErr     bool
	}{
		{"cpu1", stat, 1, 83353 + 186 + 46393 + 1122 + 217, 83353 + 186 + 46393 + 86444 + 1109 + 1122 + 217, false},
		{"cpu0, not the total line", stat, 0, 81267 + 138 + 25494 + 1213 + 219, 81267 + 138 + 25494 + 108168 + 559 + 1213 + 219, false},
		{"cpu1 is not cpu10", "cpu10 1 1 1 1\n", 1, 0, 0, true},
		{"short line", "cpu0 1 2\n", 0, 0, 0, true},
		{"garbage", "cpu0 1 x 3 4\n", 0, 0, 0, true},
		{"missing", stat, 2, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			busy, total, err := cpuTimes([]byte(tc.stat), tc.cpu)
			if (err != nil) != tc.wantErr || busy != tc.busy || total != tc.total {
				t.Errorf("cpuTimes = %d, %d, %v; want %d, %d, error %v", busy, total, err, tc.busy, tc.total, tc.wantErr)
			}
		})
	}
}
