//go:build !linux

package safefile

import "os"

// Elsewhere than on Linux snag only reads the inputs a user names (a
// recording, an strace log): no traced process, no root to resolve in.

// InRoot needs Linux (openat2 and /proc/PID/root).
func InRoot(root, name string, opt Options) (*os.File, error) {
	return nil, &os.PathError{Op: "open", Path: name, Err: ErrNotSupported}
}

// Link needs Linux (/proc's links).
func Link(name string, opt Options) (*os.File, error) {
	return nil, &os.PathError{Op: "open", Path: name, Err: ErrNotSupported}
}

// Open opens an input the user named and refuses anything but a regular
// file, as on Linux (see openByStat).
func Open(name string, opt Options) (*os.File, error) {
	return openByStat(name, opt)
}
