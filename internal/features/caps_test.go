package features

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPrivileges(t *testing.T) {
	set := func(bits ...uint) CapSet {
		var s CapSet
		for _, b := range bits {
			s |= 1 << b
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		caps    CapSet
		missing string // "" when tracing is allowed
	}{
		{"none", 0, "without CAP_BPF, CAP_PERFMON"},
		{"bpf only", set(unix.CAP_BPF), "without CAP_PERFMON"},
		{"perfmon only", set(unix.CAP_PERFMON), "without CAP_BPF"},
		{"the optional ones only", set(unix.CAP_SYS_PTRACE, unix.CAP_DAC_READ_SEARCH, unix.CAP_CHECKPOINT_RESTORE), "without CAP_BPF, CAP_PERFMON"},
		{"bpf and perfmon", set(unix.CAP_BPF, unix.CAP_PERFMON), ""},
		{"sys_admin", set(unix.CAP_SYS_ADMIN), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := privileges(tc.caps)
			if tc.missing == "" {
				if err != nil {
					t.Errorf("privileges = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.missing) || !errors.Is(err, os.ErrPermission) {
				t.Fatalf("privileges = %v, want a permission error saying %q", err, tc.missing)
			}
			// The exit-3 message keeps naming what is missing.
			if s := simplify(err); !strings.Contains(s.Error(), tc.missing) {
				t.Errorf("simplify(%v) = %v, lost %q", err, s, tc.missing)
			}
		})
	}
}

func TestCapabilitiesListed(t *testing.T) {
	seen := map[uint]bool{}
	for _, c := range Capabilities {
		if !strings.HasPrefix(c.Name, "CAP_") || c.Why == "" || seen[c.Bit] {
			t.Errorf("capability %+v: want a CAP_ name, a reason and a bit of its own", c)
		}
		seen[c.Bit] = true
	}
}
