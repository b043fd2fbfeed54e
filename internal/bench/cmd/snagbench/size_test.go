package main

import "testing"

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"512", 512, false},
		{"64K", 64 << 10, false},
		{"256M", 256 << 20, false},
		{"1G", 1 << 30, false},
		{"1g", 1 << 30, false},
		{"2GiB", 2 << 30, false},
		{"10MB", 10 << 20, false},
		{"", 0, true},
		{"G", 0, true},
		{"-1M", 0, true},
		{"1T", 0, true},
		{"99999999999G", 0, true},
	} {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parse([]string{"-snag", "x/snag", "-rounds", "5", "-duration", "2s", "-workloads", "redis, getppid", "-strace-log", "-soak", "2m"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SnagPath != "x/snag" || cfg.Rounds != 5 || cfg.Duration.Seconds() != 2 ||
		len(cfg.Workloads) != 2 || cfg.Workloads[0] != "redis" || cfg.Workloads[1] != "getppid" || cfg.StraceLog != 1<<30 || cfg.Soak.Minutes() != 2 {
		t.Errorf("parse = %+v", cfg)
	}
	cfg, err = parse([]string{"-strace-log=256M"})
	if err != nil || cfg.StraceLog != 256<<20 {
		t.Errorf("-strace-log=256M: %d, %v", cfg.StraceLog, err)
	}
	for _, bad := range [][]string{{"-rounds", "0"}, {"-workloads", "nginx"}, {"-strace-log=lots"}, {"extra"}, {"-soak", "10s"}, {"-workloads=", "-soak", "0"}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q): no error", bad)
		}
	}
}
