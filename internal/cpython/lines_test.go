package cpython

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// lineOracle has an interpreter dump its code objects' line tables with
// what co_lines() says each instruction's line is.
const lineOracle = `
import json, sys
src = '''
def f(a,
      b):
    x = [i
         for i in range(a)]
    if a:
        return b
    try:
        pass
    except Exception:
        y = 1
    while a:
        a -= 1
    return (a +
            b)
'''
out = []
def walk(co):
    out.append({"table": co.co_linetable.hex(), "first": co.co_firstlineno, "size": len(co.co_code),
                "lines": [[s, e, l] for s, e, l in co.co_lines()]})
    for c in co.co_consts:
        if hasattr(c, "co_lines"):
            walk(c)
walk(compile(src, "t.py", "exec"))
json.dump(out, sys.stdout)
`

// Each instruction's line decoded from the table is co_lines()'s, for the
// format of each interpreter found.
func TestLineTablesAgainstTheInterpreter(t *testing.T) {
	for _, tc := range []struct {
		python string
		format LineFormat
	}{
		{"/usr/bin/python3.11", Lines311},
		{os.ExpandEnv("$HOME/.pyenv/versions/3.10.13/bin/python3.10"), Lines310},
		{os.ExpandEnv("$HOME/.pyenv/versions/3.12.1/bin/python3.12"), Lines311},
	} {
		t.Run(tc.python, func(t *testing.T) {
			if _, err := os.Stat(tc.python); err != nil {
				t.Skipf("%s not installed", tc.python)
			}
			b, err := exec.Command(tc.python, "-c", lineOracle).Output()
			if err != nil {
				t.Fatal(err)
			}
			var codes []struct {
				Table string
				First int32
				Size  uint32
				Lines [][3]*int32
			}
			if err := json.Unmarshal(b, &codes); err != nil {
				t.Fatal(err)
			}
			for _, c := range codes {
				table, _ := hex.DecodeString(c.Table)
				ranges := lineRanges(tc.format, table, c.First)
				for _, l := range c.Lines {
					want := uint32(0)
					if l[2] != nil && *l[2] > 0 {
						want = uint32(*l[2])
					}
					for off := uint32(*l[0]); off < uint32(*l[1]); off += 2 {
						if got := lineAt(ranges, off); got != want {
							t.Errorf("code at line %d, offset %d: line %d, want %d", c.First, off, got, want)
						}
					}
				}
			}
		})
	}
}
