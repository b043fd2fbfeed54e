//go:build !linux

package cli

import (
	"os"
)

// createExclusive creates path for writing, failing if anything (a file,
// a symlink) is there already.
func createExclusive(path string, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}

// publish renames a finished file into place; unless replace, it fails
// rather than replace a file that appeared at path meanwhile (a hard link
// is exclusive).
func publish(from, to string, replace bool) error {
	if replace {
		return os.Rename(from, to)
	}
	if err := os.Link(from, to); err != nil {
		return err
	}
	return os.Remove(from)
}
