package syscalls

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/snagtrace/snag/internal/syscalls/internal/unistd"
)

func TestKnownNumbers(t *testing.T) {
	tests := []struct {
		arch string
		name string
		nr   int
	}{
		{"amd64", "read", 0},
		{"amd64", "close", 3},
		{"amd64", "poll", 7},
		{"amd64", "nanosleep", 35},
		{"amd64", "connect", 42},
		{"amd64", "getppid", 110},
		{"amd64", "epoll_wait", 232},
		{"amd64", "futex", 202},
		{"amd64", "epoll_pwait2", 441},
		{"arm64", "read", 63},
		{"arm64", "close", 57},
		{"arm64", "ppoll", 73},
		{"arm64", "nanosleep", 101},
		{"arm64", "getppid", 173},
		{"arm64", "connect", 203},
		{"arm64", "futex", 98},
		{"arm64", "openat", 56},
		{"arm64", "newfstatat", 79}, // defined through __NR3264_fstatat
		{"arm64", "fcntl", 25},      // defined through __NR3264_fcntl
		{"x86_64", "getppid", 110},
		{"aarch64", "getppid", 173},
	}
	for _, tt := range tests {
		t.Run(tt.arch+"/"+tt.name, func(t *testing.T) {
			if got := Name(tt.arch, tt.nr); got != tt.name {
				t.Errorf("Name(%q, %d) = %q, want %q", tt.arch, tt.nr, got, tt.name)
			}
			nr, ok := Number(tt.arch, tt.name)
			if !ok || nr != tt.nr {
				t.Errorf("Number(%q, %q) = %d, %v, want %d, true", tt.arch, tt.name, nr, ok, tt.nr)
			}
		})
	}
}

func TestUnknown(t *testing.T) {
	// arm64 only has the generic calls: ppoll, epoll_pwait, openat.
	for _, name := range []string{"poll", "epoll_wait", "open", "select", "stat", "fork"} {
		if nr, ok := Number("arm64", name); ok {
			t.Errorf("arm64 has %s = %d, want absent", name, nr)
		}
	}
	for _, c := range []struct {
		arch string
		nr   int
	}{
		{"amd64", -1},
		{"amd64", 100000},
		{"arm64", 244}, // arch-specific range start, no syscall
		{"arm64", 300}, // gap between the generic range and the y2038 calls
		{"riscv64", 0},
		{"", 0},
	} {
		if got := Name(c.arch, c.nr); got != "" {
			t.Errorf("Name(%q, %d) = %q, want \"\"", c.arch, c.nr, got)
		}
	}
	if _, ok := Number("amd64", "no_such_call"); ok {
		t.Error("Number found no_such_call")
	}
	if _, ok := Number("sparc", "read"); ok {
		t.Error("Number found read on an arch without a table")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, arch := range Arches() {
		n := 0
		for nr := range 1024 {
			name := Name(arch, nr)
			if name == "" {
				continue
			}
			n++
			back, ok := Number(arch, name)
			if !ok || back != nr {
				t.Errorf("%s: Number(Name(%d) = %q) = %d, %v", arch, nr, name, back, ok)
			}
		}
		if n < 250 {
			t.Errorf("%s: only %d syscalls in the table", arch, n)
		}
	}
}

func TestNative(t *testing.T) {
	want := runtime.GOARCH
	if want != "amd64" && want != "arm64" {
		want = "amd64"
	}
	if got := Native(); got != want {
		t.Errorf("Native() = %q, want %q", got, want)
	}
	if Name(Native(), 0) == "" {
		t.Error("native table has no syscall 0")
	}
}

// TestGeneratedUpToDate regenerates the tables from the installed headers
// and compares them with the committed files.
func TestGeneratedUpToDate(t *testing.T) {
	if _, err := exec.LookPath("cpp"); err != nil {
		t.Skip("cpp not installed")
	}
	for _, src := range unistd.Sources {
		t.Run(src.Arch, func(t *testing.T) {
			if _, err := os.Stat(src.Header); err != nil {
				t.Skipf("headers not installed: %v", err)
			}
			tab, err := unistd.Load(context.Background(), src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := unistd.Render(tab)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(unistd.FileName(src.Arch))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(want, []byte("Kernel headers "+tab.Version+" ")) {
				t.Skipf("installed headers are %s, the committed table came from other headers", tab.Version)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is stale: run go generate ./internal/syscalls", unistd.FileName(src.Arch))
			}
		})
	}
}
