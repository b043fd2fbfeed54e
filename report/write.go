package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/snagtrace/snag/internal/model"
)

// Format is a report file format, chosen by the file's extension.
type Format string

const (
	FormatJSON     Format = "json"
	FormatPprof    Format = "pprof"
	FormatFolded   Format = "folded"
	FormatSVG      Format = "svg"
	FormatPerfetto Format = "perfetto"
	FormatHTML     Format = "html"
)

// Longest suffix first: ".perfetto.json" before ".json".
var suffixes = []struct {
	suffix string
	format Format
}{
	{".perfetto.json", FormatPerfetto},
	{".pb.gz", FormatPprof},
	{".folded", FormatFolded},
	{".svg", FormatSVG},
	{".html", FormatHTML},
	{".json", FormatJSON},
}

// FormatOf picks the format for a file name.
func FormatOf(path string) (Format, error) {
	for _, s := range suffixes {
		if strings.HasSuffix(path, s.suffix) {
			return s.format, nil
		}
	}
	return "", fmt.Errorf("unknown report extension: use .json, .pb.gz, .folded, .svg, .perfetto.json or .html")
}

// Write renders the report the file name asks for.
func Write(w io.Writer, path string, t *model.Trace, a *model.Analysis) error {
	f, err := FormatOf(path)
	if err != nil {
		return err
	}
	switch f {
	case FormatPerfetto:
		return Perfetto(w, t, a)
	case FormatPprof:
		return Pprof(w, t, a)
	case FormatFolded:
		return Folded(w, t, a)
	case FormatSVG:
		return FlameSVG(w, t, a)
	case FormatHTML:
		return HTML(w, t, a)
	default:
		return JSON(w, t, a)
	}
}
