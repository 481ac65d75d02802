//go:build !linux

package drop

import (
	"fmt"
	"io/fs"
	"os"
)

// openRegular opens name in the directory dir for reading and checks the
// opened file is regular. Elsewhere than on Linux the open goes through
// an os.Root (no link leads outside the folder); it may wait for a writer
// when a FIFO was put in the file's place.
func openRegular(dir *os.File, name string) (*os.File, identity, error) {
	root, err := os.OpenRoot(dir.Name())
	if err != nil {
		return nil, identity{}, err
	}
	defer root.Close()
	if st, err := root.Lstat(name); err != nil {
		return nil, identity{}, err
	} else if !st.Mode().IsRegular() {
		return nil, identity{}, fmt.Errorf("%w: %s", ErrNotRegular, SafeName(name))
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, identity{}, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, identity{}, fmt.Errorf("%w: %s", ErrNotRegular, SafeName(name))
	}
	return f, fileIdentity(st), nil
}

func fileIdentity(fi fs.FileInfo) identity {
	return identity{size: fi.Size(), mtimeNS: fi.ModTime().UnixNano(), known: true}
}
