package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/recording"
	"github.com/snagtrace/snag/internal/safefile"
)

// A Recorder is the flight recorder: every window goes to a recording
// file of its own in Dir, named for the window's end, and files whose
// window ended more than Keep ago are deleted. `snag analyze FILE` then
// explains the minutes before an incident after the fact.
type Recorder struct {
	dir  string
	keep time.Duration
}

// Recording files are named snag-TIME.snag, TIME the window's end in UTC:
// names sort as times, and the rotation touches no other file.
const (
	recordPrefix = "snag-"
	recordSuffix = ".snag"
	recordTime   = "20060102T150405.000Z"
)

// NewRecorder checks that dir is a directory snag can create files in
// before anything is traced.
func NewRecorder(dir string, keep time.Duration) (*Recorder, error) {
	if keep <= 0 {
		return nil, errors.New("the flight recorder needs a positive time to keep")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".snag-check-*")
	if err != nil {
		return nil, fmt.Errorf("cannot create files in %s: %w", dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return &Recorder{dir: dir, keep: keep}, nil
}

// Write saves the window t as a recording, then deletes the recordings
// older than Keep. Recordings hold what the processes read and wrote:
// mode 0600.
func (r *Recorder) Write(t *model.Trace) error {
	end := t.Start.Add(t.Duration)
	path := filepath.Join(r.dir, recordPrefix+end.UTC().Format(recordTime)+recordSuffix)
	if err := safefile.WriteAtomic(path, 0o600, func(w io.Writer) error { return recording.Write(w, t) }); err != nil {
		return fmt.Errorf("flight recorder: %w", err)
	}
	return r.rotate(end)
}

// rotate deletes the recordings whose window ended before now-Keep.
func (r *Recorder) rotate(now time.Time) error {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("flight recorder: %w", err)
	}
	oldest := now.Add(-r.keep)
	for _, e := range ents {
		name := e.Name()
		stamp, ok := strings.CutPrefix(name, recordPrefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if stamp, ok = strings.CutSuffix(stamp, recordSuffix); !ok {
			continue
		}
		at, err := time.Parse(recordTime, stamp)
		if err != nil || !at.Before(oldest) {
			continue
		}
		if err := os.Remove(filepath.Join(r.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("flight recorder: %w", err)
		}
	}
	return nil
}
