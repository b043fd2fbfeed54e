package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Outputs are never written in place. Each is checked before tracing
// starts (so a bad path costs a usage error, not the trace), then written
// to a temporary file in its directory and renamed into place once
// complete: a reader never sees half a report, a failed write leaves the
// previous file as it was, and a symlink at the path is never followed.

// outputError is an output that could not be written after the trace: the
// report still went to stdout; exit 4.
type outputError struct{ err error }

func (e outputError) Error() string { return e.err.Error() }
func (e outputError) Unwrap() error { return e.err }

// checkOutput validates path as an output before anything is traced: its
// directory exists and takes new files, and the path is not a symlink or
// anything but a regular file. An existing file is refused unless replace.
func checkOutput(flag, path string, replace bool) error {
	if path == "" {
		return usagef("%s: empty file name", flag)
	}
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return usagef("%s %s is a symlink; snag does not write through symlinks: give the path it points to", flag, path)
	case err == nil && !fi.Mode().IsRegular():
		return usagef("%s %s exists and is not a regular file", flag, path)
	case err == nil && !replace:
		return usagef("%s %s exists; snag keeps it: remove it, choose another name, or add --force", flag, path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return usagef("%s %s: %v", flag, path, err)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return usagef("%s %s: directory %s: %v", flag, path, dir, unwrapPath(err))
	} else if !fi.IsDir() {
		return usagef("%s %s: %s is not a directory", flag, path, dir)
	}
	// The one sure test of "can snag create its temporary file here"
	// (permissions, a read-only or immutable directory) is doing it.
	f, err := os.CreateTemp(dir, ".snag-check-*")
	if err != nil {
		return usagef("%s %s: cannot create files in %s: %v", flag, path, dir, unwrapPath(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
