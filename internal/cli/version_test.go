package cli

import (
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/version"
)

func TestVersion(t *testing.T) {
	want := version.Get().String() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errs := run(args...)
		if code != ExitOK || out != want || errs != "" {
			t.Errorf("snag %v: exit %d, stdout %q, stderr %q; want exit 0 and %q", args, code, out, errs, want)
		}
	}
	if code, _, errs := run("version", "extra"); code != ExitUsage || !strings.Contains(errs, "no arguments") {
		t.Errorf("snag version extra: exit %d, stderr %q; want exit %d saying it takes no arguments", code, errs, ExitUsage)
	}
	if _, out, _ := run("help"); !strings.Contains(out, "snag version") {
		t.Errorf("snag help does not list snag version:\n%s", out)
	}
}
