package procfs

import (
	"strings"
	"testing"
)

func TestParseMapsLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    Mapping
		wantErr bool
	}{
		{
			name: "file",
			line: "0041f000-006d2000 r-xp 0001f000 fe:00 247702                             /usr/bin/python3.11",
			want: Mapping{Start: 0x41f000, End: 0x6d2000, Perms: "r-xp", Offset: 0x1f000, Dev: "fe:00", Inode: 247702, Path: "/usr/bin/python3.11"},
		},
		{
			// The inode "0" also occurs in the address: the path must
			// come from the field position, not a text search.
			name: "vdso",
			line: "7ffd1000-7ffd3000 r-xp 00000000 00:00 0                          [vdso]",
			want: Mapping{Start: 0x7ffd1000, End: 0x7ffd3000, Perms: "r-xp", Dev: "00:00", Path: "[vdso]"},
		},
		{
			name: "anonymous",
			line: "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 ",
			want: Mapping{Start: 0x7f0000000000, End: 0x7f0000021000, Perms: "rw-p", Dev: "00:00"},
		},
		{
			name: "path with spaces, deleted",
			line: "7f00-7f10 r--p 00000000 fd:01 12 /opt/my app/lib.so (deleted)",
			want: Mapping{Start: 0x7f00, End: 0x7f10, Perms: "r--p", Dev: "fd:01", Inode: 12, Path: "/opt/my app/lib.so (deleted)"},
		},
		{name: "short", line: "7f00-7f10 r--p 00000000", wantErr: true},
		{name: "no range", line: "7f00 r--p 00000000 fd:01 12", wantErr: true},
		{name: "bad inode", line: "7f00-7f10 r--p 00000000 fd:01 x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMapsLine(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestMapsFixture(t *testing.T) {
	maps, err := testFS.Maps(fixturePID)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 5 {
		t.Fatalf("got %d mappings", len(maps))
	}
	exec := 0
	for _, m := range maps {
		if m.Path != "/usr/bin/python3.11" {
			t.Errorf("path %q", m.Path)
		}
		if m.Exec() {
			exec++
		}
	}
	if exec != 1 || !maps[1].Exec() {
		t.Errorf("want only the second mapping executable: %+v", maps)
	}
	if _, err := ParseMaps(strings.NewReader("garbage\n")); err == nil {
		t.Error("ParseMaps accepted garbage")
	}
}
