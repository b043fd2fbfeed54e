package report

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// Folded writes the blocked time as folded stacks, one line per distinct
// stack: "process (pid);thread (tid);outermost;…;leaf;syscall ns". Lines are
// sorted so the same trace always gives the same bytes; flamegraph.pl,
// inferno and speedscope read the format as is.
func Folded(w io.Writer, t *model.Trace, a *model.Analysis) error {
	totals := map[string]time.Duration{}
	for _, s := range blockedSamples(t, a) {
		totals[foldedKey(s.path)] += s.ev.Duration
	}
	keys := make([]string, 0, len(totals))
	for k := range totals {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	bw := bufio.NewWriter(w)
	for _, k := range keys {
		if _, err := fmt.Fprintf(bw, "%s %d\n", k, max(totals[k], 0).Nanoseconds()); err != nil {
			return fmt.Errorf("write folded stacks: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write folded stacks: %w", err)
	}
	return nil
}

func foldedKey(path []pathFrame) string {
	var b strings.Builder
	for i, f := range path {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(f.name)
	}
	return b.String()
}
