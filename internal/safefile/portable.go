package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// openByStat is Open without O_PATH, for systems other than Linux: the
// check is a stat before the open and a comparison after it. It follows
// symlinks and accepts FUSE, as Open does for the inputs a user names.
// Opening a FIFO that passed the stat (a swap between stat and open) can
// still block; withTimeout bounds that wait.
func openByStat(name string, opt Options) (*os.File, error) {
	if opt.MaxSize == 0 {
		opt.MaxSize = -1
	}
	return withTimeout(opt.timeout(), name, func() (*os.File, error) {
		fi, err := os.Stat(name)
		if err != nil {
			return nil, err
		}
		if err := checkInfo(fi, name, opt); err != nil {
			return nil, err
		}
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		if fi2, err := f.Stat(); err != nil || !os.SameFile(fi, fi2) {
			f.Close()
			return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("file changed while opening")}
		}
		return f, nil
	})
}

func checkInfo(fi fs.FileInfo, name string, opt Options) error {
	if !fi.Mode().IsRegular() {
		return &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kindOf(fi.Mode()))}
	}
	if fi.Size() > opt.maxSize() {
		return &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: %d bytes, more than the %d snag reads", ErrTooLarge, fi.Size(), opt.maxSize())}
	}
	return nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	}
	return "not a file"
}
