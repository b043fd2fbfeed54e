package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/snagtrace/snag/analyzer"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/safefile"
	"github.com/snagtrace/snag/report"
)

// outputFlags choose the analysis and the reports.
type outputFlags struct {
	format  string
	outputs []string
	failOn  string
	expectFlags
	baselineOut string
	top         int
}

// expectFlags say which peers are expected: attach, run, analyze and
// serve share them.
type expectFlags struct {
	expect     string
	expectFile string
	baseline   string
}

func (f *outputFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.format, "format", "table", "report on stdout as table or json")
	fs.StringArrayVarP(&f.outputs, "output", "o", nil, "also write a report to FILE; the extension picks the format: .json, .pb.gz (pprof), .folded, .svg (flame graph), .perfetto.json (timeline), .html (a self-contained page of all of these); repeatable")
	fs.StringVar(&f.failOn, "fail-on", "", "exit 1 when a finding at or above this severity exists: high, medium or low")
	f.expectFlags.register(fs)
	fs.StringVar(&f.baselineOut, "baseline-out", "", "save this run's peers as a baseline file")
	fs.IntVar(&f.top, "top", 20, "rows per table")
}

func (f *expectFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.expect, "expect", "", "peers the process is expected to talk to (HOST:PORT,...); any other is an unexpected-connection finding")
	fs.StringVar(&f.expectFile, "expect-file", "", "file of expected peers, one HOST:PORT per line")
	fs.StringVar(&f.baseline, "baseline", "", "flag peers that are new relative to this baseline file")
}

type outputConfig struct {
	flags      outputFlags
	analyzer   analyzer.Config
	failOn     model.Severity
	unresolved []string // --expect hosts that resolve to nothing
}

// prepare validates everything before any tracing starts.
func (f *outputFlags) prepare() (*outputConfig, error) {
	oc := &outputConfig{flags: *f}
	switch f.format {
	case "table", "json":
	default:
		return nil, usagef("--format must be table or json, got %q", f.format)
	}
	for _, o := range f.outputs {
		if _, err := report.FormatOf(o); err != nil {
			return nil, usagef("-o %s: %v", o, err)
		}
		if err := checkOutput("-o", o, true); err != nil {
			return nil, err
		}
	}
	if f.baselineOut != "" {
		if !strings.HasSuffix(f.baselineOut, ".json") {
			return nil, usagef("--baseline-out %s: a baseline is JSON: name it *.json", f.baselineOut)
		}
		if err := checkOutput("--baseline-out", f.baselineOut, true); err != nil {
			return nil, err
		}
	}
	if f.failOn != "" {
		sev, err := model.ParseSeverity(f.failOn)
		if err != nil {
			return nil, usagef("--fail-on: %v", err)
		}
		oc.failOn = sev
	}
	acfg, unresolved, err := f.expectFlags.config()
	if err != nil {
		return nil, err
	}
	oc.analyzer, oc.unresolved = acfg, unresolved
	return oc, nil
}

// config reads the expected peers into an analyzer configuration, with
// the --expect hosts that resolve to nothing.
func (f *expectFlags) config() (cfg analyzer.Config, unresolved []string, err error) {
	if f.expect != "" {
		eps, err := analyzer.ParseExpect(f.expect)
		if err != nil {
			return cfg, nil, usagef("--expect: %v", err)
		}
		cfg.Expect = append(cfg.Expect, eps...)
	}
	if f.expectFile != "" {
		fh, err := openInput("--expect-file", f.expectFile)
		if err != nil {
			return cfg, nil, err
		}
		eps, err := analyzer.ReadExpectFile(fh)
		fh.Close()
		if err != nil {
			return cfg, nil, inputError{fmt.Errorf("--expect-file %s: %w", f.expectFile, err)}
		}
		cfg.Expect = append(cfg.Expect, eps...)
	}
	if f.baseline != "" {
		fh, err := openInput("--baseline", f.baseline)
		if err != nil {
			return cfg, nil, err
		}
		b, err := analyzer.ReadBaseline(fh)
		fh.Close()
		if err != nil {
			return cfg, nil, inputError{fmt.Errorf("--baseline %s: %w", f.baseline, err)}
		}
		cfg.Baseline = b
	}
	if cfg.Expect != nil || cfg.Baseline != nil {
		cfg.Resolve = resolve
	}
	return cfg, unresolvedHosts(cfg.Expect), nil
}

// unresolvedHosts returns the named hosts of eps that resolve to nothing
// (a typo, or a name this host cannot look up): no peer can match them,
// which the user should hear before reading a report full of unexpected
// connections.
func unresolvedHosts(eps []analyzer.Endpoint) []string {
	var out []string
	seen := map[string]bool{}
	for _, ep := range eps {
		h := ep.Host
		if h == "*" || strings.HasPrefix(h, "unix:") || seen[h] {
			continue
		}
		seen[h] = true
		if _, err := netip.ParseAddr(h); err == nil {
			continue
		}
		if len(resolve(h)) == 0 {
			out = append(out, h)
		}
	}
	return out
}

// openInput opens a file the user gave as input. Only regular files are
// read: a FIFO or a terminal could keep snag waiting for input that never
// comes.
func openInput(flag, path string) (*os.File, error) {
	f, err := safefile.Open(path, safefile.Options{})
	if err != nil {
		if errors.Is(err, safefile.ErrNotRegular) {
			return nil, inputError{fmt.Errorf("%s %s: %w; snag reads only regular files (save the input to a file first)", flag, path, unwrapPath(err))}
		}
		return nil, inputError{fmt.Errorf("%s %s: %w", flag, path, unwrapPath(err))}
	}
	return f, nil
}

// resolve looks up --expect host names, briefly: a slow resolver must not
// hold the report back.
func resolve(host string) []netip.Addr {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	return addrs
}

// analyzeAndReport analyzes t, prints the report on stdout, writes every
// requested file and applies --fail-on. The report on stdout comes first:
// an output that cannot be written (a full disk, say) costs that file,
// not the trace; it is an outputError (exit 4), and --fail-on still says
// its word on stderr.
func analyzeAndReport(t *model.Trace, oc *outputConfig, env Env) error {
	oc.analyzer.Threshold = t.Threshold
	if oc.analyzer.Threshold == 0 {
		oc.analyzer.Threshold = analyzer.DefaultThreshold
	}
	for _, h := range oc.unresolved {
		t.Notes = append(t.Notes, fmt.Sprintf("--expect host %s resolves to no address here: no peer matches it", h))
	}
	a := analyzer.Analyze(t, oc.analyzer)
	var err error
	if oc.flags.format == "json" {
		err = report.JSON(env.Stdout, t, a)
	} else {
		err = report.Table(env.Stdout, t, a, report.TableOptions{Top: oc.flags.top})
	}
	if err != nil {
		return outputError{fmt.Errorf("write report to stdout: %w", err)}
	}
	var failed []error
	for _, path := range oc.flags.outputs {
		if err := safefile.WriteAtomic(path, 0o644, func(w io.Writer) error { return report.Write(w, path, t, a) }); err != nil {
			failed = append(failed, err)
		}
	}
	if oc.flags.baselineOut != "" {
		if err := safefile.WriteAtomic(oc.flags.baselineOut, 0o644, analyzer.NewBaseline(a).Write); err != nil {
			failed = append(failed, fmt.Errorf("baseline: %w", err))
		}
	}
	var findings error
	if oc.failOn != 0 {
		if sev := analyzer.MaxSeverity(a); sev >= oc.failOn {
			findings = findingsError{fmt.Sprintf("%s-severity findings (--fail-on %s)", sev, oc.failOn)}
		}
	}
	if len(failed) > 0 {
		if findings != nil {
			fmt.Fprintf(env.Stderr, "snag: %v\n", findings)
		}
		for _, err := range failed[:len(failed)-1] {
			fmt.Fprintf(env.Stderr, "snag: %v\n", err)
		}
		return outputError{fmt.Errorf("%w (the report is on stdout)", failed[len(failed)-1])}
	}
	return findings
}
