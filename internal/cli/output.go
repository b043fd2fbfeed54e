package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/snagtrace/snag/analyzer"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/report"
)

// outputFlags choose the analysis and the reports.
type outputFlags struct {
	format      string
	outputs     []string
	failOn      string
	expect      string
	expectFile  string
	baseline    string
	baselineOut string
	top         int
}

func (f *outputFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.format, "format", "table", "report on stdout as table or json")
	fs.StringArrayVarP(&f.outputs, "output", "o", nil, "also write a report to FILE; the extension picks the format: .json, .pb.gz (pprof), .folded, .svg (flame graph), .perfetto.json (timeline), .html (a self-contained page of all of these); repeatable")
	fs.StringVar(&f.failOn, "fail-on", "", "exit 1 when a finding at or above this severity exists: high, medium or low")
	fs.StringVar(&f.expect, "expect", "", "peers the process is expected to talk to (HOST:PORT,...); any other is an unexpected-connection finding")
	fs.StringVar(&f.expectFile, "expect-file", "", "file of expected peers, one HOST:PORT per line")
	fs.StringVar(&f.baseline, "baseline", "", "flag peers that are new relative to this baseline file")
	fs.StringVar(&f.baselineOut, "baseline-out", "", "save this run's peers as a baseline file")
	fs.IntVar(&f.top, "top", 20, "rows per table")
}

type outputConfig struct {
	flags    outputFlags
	analyzer analyzer.Config
	failOn   model.Severity
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
	}
	if f.failOn != "" {
		sev, err := model.ParseSeverity(f.failOn)
		if err != nil {
			return nil, usagef("--fail-on: %v", err)
		}
		oc.failOn = sev
	}
	if f.expect != "" {
		eps, err := analyzer.ParseExpect(f.expect)
		if err != nil {
			return nil, usagef("--expect: %v", err)
		}
		oc.analyzer.Expect = append(oc.analyzer.Expect, eps...)
	}
	if f.expectFile != "" {
		fh, err := os.Open(f.expectFile)
		if err != nil {
			return nil, inputError{fmt.Errorf("--expect-file: %w", err)}
		}
		eps, err := analyzer.ReadExpectFile(fh)
		fh.Close()
		if err != nil {
			return nil, inputError{fmt.Errorf("--expect-file %s: %w", f.expectFile, err)}
		}
		oc.analyzer.Expect = append(oc.analyzer.Expect, eps...)
	}
	if f.baseline != "" {
		fh, err := os.Open(f.baseline)
		if err != nil {
			return nil, inputError{fmt.Errorf("--baseline: %w", err)}
		}
		b, err := analyzer.ReadBaseline(fh)
		fh.Close()
		if err != nil {
			return nil, inputError{fmt.Errorf("--baseline %s: %w", f.baseline, err)}
		}
		oc.analyzer.Baseline = b
	}
	if oc.analyzer.Expect != nil || oc.analyzer.Baseline != nil {
		oc.analyzer.Resolve = resolve
	}
	return oc, nil
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

// report analyzes t, writes every requested report and applies --fail-on.
func analyzeAndReport(t *model.Trace, oc *outputConfig, env Env) error {
	oc.analyzer.Threshold = t.Threshold
	if oc.analyzer.Threshold == 0 {
		oc.analyzer.Threshold = analyzer.DefaultThreshold
	}
	a := analyzer.Analyze(t, oc.analyzer)
	for _, path := range oc.flags.outputs {
		if err := writeReport(path, t, a); err != nil {
			return err
		}
	}
	if oc.flags.baselineOut != "" {
		var buf bytes.Buffer
		if err := analyzer.NewBaseline(a).Write(&buf); err != nil {
			return fmt.Errorf("write baseline: %w", err)
		}
		if err := os.WriteFile(oc.flags.baselineOut, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write baseline: %w", err)
		}
	}
	var err error
	if oc.flags.format == "json" {
		err = report.JSON(env.Stdout, t, a)
	} else {
		err = report.Table(env.Stdout, t, a, report.TableOptions{Top: oc.flags.top})
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if oc.failOn != 0 {
		if sev := analyzer.MaxSeverity(a); sev >= oc.failOn {
			return findingsError{fmt.Sprintf("%s-severity findings (--fail-on %s)", sev, oc.failOn)}
		}
	}
	return nil
}

func writeReport(path string, t *model.Trace, a *model.Analysis) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	werr := report.Write(f, path, t, a)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("write %s: %w", path, werr)
	}
	if cerr != nil {
		return fmt.Errorf("write %s: %w", path, cerr)
	}
	return nil
}
