package drop

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// openRegular opens name in the directory dir for reading. It does not
// follow a symbolic link and does not wait for a writer (a FIFO put in
// the file's place would block a plain open for ever), then checks that
// the opened file is regular before a byte is read, and only then makes
// the descriptor blocking again. The identity is the opened file's.
func openRegular(dir *os.File, name string) (*os.File, identity, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Openat(int(dir.Fd()), name, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	path := filepath.Join(dir.Name(), name)
	switch {
	case err == syscall.ELOOP:
		return nil, identity{}, fmt.Errorf("%w: %s is a symbolic link", ErrNotRegular, SafeName(name))
	case err != nil:
		return nil, identity{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, identity{}, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, identity{}, fmt.Errorf("%w: %s is %s", ErrNotRegular, SafeName(name), kindOf(st.Mode))
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, identity{}, &fs.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), statIdentity(&st), nil
}

func statIdentity(st *syscall.Stat_t) identity {
	return identity{dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size, mtimeNS: st.Mtim.Nano(), known: true}
}

// fileIdentity is the identity of a file from Lstat or Stat.
func fileIdentity(fi fs.FileInfo) identity {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return statIdentity(st)
	}
	return identity{size: fi.Size(), mtimeNS: fi.ModTime().UnixNano(), known: true}
}

func kindOf(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		return "a FIFO"
	case syscall.S_IFCHR:
		return "a character device"
	case syscall.S_IFBLK:
		return "a block device"
	case syscall.S_IFDIR:
		return "a directory"
	case syscall.S_IFSOCK:
		return "a socket"
	}
	return fmt.Sprintf("of type %#o", mode&syscall.S_IFMT)
}
