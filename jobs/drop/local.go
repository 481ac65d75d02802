package drop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// LocalOptions configures a local folder drop.
type LocalOptions struct {
	// Inbox, Outbox, Archive and Quarantine are directories; they must
	// exist. Archive and Quarantine must be on the inbox's file system.
	// Either Inbox or Outbox may be empty; an inbox needs the other two.
	Inbox, Outbox, Archive, Quarantine string
	// TempPrefix and TempSuffix make the temporary name of a delivery:
	// TempPrefix + name + TempSuffix. Both empty means suffix ".part".
	TempPrefix, TempSuffix string
	// FileMode is the permission of a delivered file (default 0640).
	// Group, when above 0, is the group ID it is given; 0 keeps the
	// group the system gives (the folder's when it is setgid, else ours).
	FileMode fs.FileMode
	Group    int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Local is a drop in local folders. Every access goes through an os.Root,
// so that a symbolic link in a folder cannot lead outside it.
type Local struct {
	opts   LocalOptions
	roots  [4]*os.Root
	inbox  *os.File // the inbox folder, for opening without following links
	opened openedFiles
}

var _ Drop = (*Local)(nil)

// NewLocal opens the folders of a local drop.
func NewLocal(opts LocalOptions) (*Local, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TempPrefix == "" && opts.TempSuffix == "" {
		opts.TempSuffix = ".part"
	}
	if opts.FileMode == 0 {
		opts.FileMode = 0o640
	}
	if opts.FileMode&^fs.ModePerm != 0 {
		return nil, &ConfigError{fmt.Errorf("local drop: file mode %v is not a permission", opts.FileMode)}
	}
	l := &Local{opts: opts}
	switch {
	case opts.Inbox == "" && opts.Outbox == "":
		return nil, &ConfigError{errors.New("local drop: no inbox and no outbox")}
	case opts.Inbox != "" && (opts.Archive == "" || opts.Quarantine == ""):
		return nil, &ConfigError{errors.New("local drop: an inbox needs an archive and a quarantine")}
	}
	for i, dir := range []string{opts.Inbox, opts.Outbox, opts.Archive, opts.Quarantine} {
		if dir == "" {
			continue
		}
		r, err := os.OpenRoot(dir)
		if err != nil {
			l.Close()
			return nil, &ConfigError{fmt.Errorf("local drop: %s: %w", Folder(i), err)}
		}
		l.roots[i] = r
	}
	if l.roots[Inbox] != nil {
		d, err := l.roots[Inbox].Open(".")
		if err != nil {
			l.Close()
			return nil, &ConfigError{fmt.Errorf("local drop: inbox: %w", err)}
		}
		l.inbox = d
	}
	return l, nil
}

func (l *Local) tempName(name string) string { return l.opts.TempPrefix + name + l.opts.TempSuffix }

func (l *Local) root(f Folder) (*os.Root, error) {
	if l.roots[f] == nil {
		return nil, errNoFolder(f)
	}
	return l.roots[f], nil
}

// List implements Drop.
func (l *Local) List(ctx context.Context) ([]FileInfo, error) {
	in, err := l.root(Inbox)
	if err != nil {
		return nil, err
	}
	d, err := in.Open(".")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var out []FileInfo
	for _, e := range entries {
		if !e.Type().IsRegular() || nameRefused(ctx, e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // vanished meanwhile
		}
		out = append(out, FileInfo{Name: e.Name(), Size: info.Size(), ModTime: info.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Open implements Drop: no link followed, no wait for a writer, the opened
// file checked to be regular before it is read (see openRegular). The
// opened file's identity (device, inode, size, modification time) is
// what Move checks.
func (l *Local) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if _, err := l.root(Inbox); err != nil {
		return nil, err
	}
	f, id, err := openRegular(l.inbox, name)
	if err != nil {
		return nil, err
	}
	l.opened.set(name, id)
	return f, nil
}

// Put implements Drop: temporary name, copy, size check, fsync, rename.
func (l *Local) Put(ctx context.Context, name string, r io.Reader, size int64) (err error) {
	if err := CheckName(name); err != nil {
		return err
	}
	root, err := l.root(Outbox)
	if err != nil {
		return err
	}
	tmp := l.tempName(name)
	// Whatever lies under the temporary name (a delivery cut short, or a
	// FIFO someone put there, which would block the open) goes; the
	// file is created afresh.
	if err := root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, l.opts.FileMode)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			root.Remove(tmp)
		}
	}()
	// The mode asked for, whatever the umask; the group if one is set.
	if err = f.Chmod(l.opts.FileMode); err != nil {
		return err
	}
	if l.opts.Group > 0 {
		if err = f.Chown(-1, l.opts.Group); err != nil {
			return &ConfigError{fmt.Errorf("local drop: group %d for %s: %w", l.opts.Group, SafeName(name), err)}
		}
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("drop: put %s: %w", SafeName(name), err)
	}
	if n != size {
		return fmt.Errorf("drop: put %s: wrote %d bytes, want %d", SafeName(name), n, size)
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	st, err := root.Stat(tmp)
	if err != nil {
		return err
	}
	if st.Size() != size {
		return fmt.Errorf("drop: put %s: size on disk %d, want %d", SafeName(name), st.Size(), size)
	}
	if err = root.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(l.opts.Outbox)
}

// Move implements Drop.
func (l *Local) Move(ctx context.Context, name string, to Folder) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if to != Archive && to != Quarantine {
		return fmt.Errorf("drop: move %s to %s: only archive or quarantine", SafeName(name), to)
	}
	in, err := l.root(Inbox)
	if err != nil {
		return err
	}
	st, err := in.Lstat(name)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("drop: move %w: %s", ErrNotRegular, SafeName(name))
	}
	read, wasRead := l.opened.get(name)
	if now := fileIdentity(st); wasRead && !read.same(now) {
		l.opened.forget(name)
		return errReplaced(name, read, now)
	}
	target := name
	if _, err := l.roots[to].Lstat(target); err == nil {
		target = archiveName(name, l.opts.Now())
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dst := l.opts.Archive
	if to == Quarantine {
		dst = l.opts.Quarantine
	}
	if err := os.Rename(filepath.Join(l.opts.Inbox, name), filepath.Join(dst, target)); err != nil {
		return err
	}
	l.opened.forget(name)
	if wasRead {
		// The file may have been replaced between the check and the
		// rename: then the newcomer goes back to the inbox.
		if st, err := l.roots[to].Lstat(target); err == nil && !read.same(fileIdentity(st)) {
			if _, err := in.Lstat(name); errors.Is(err, fs.ErrNotExist) {
				if err := os.Rename(filepath.Join(dst, target), filepath.Join(l.opts.Inbox, name)); err == nil {
					return errReplaced(name, read, fileIdentity(st))
				}
			}
		}
	}
	return syncDir(dst)
}

// Close implements Drop.
func (l *Local) Close() error {
	var errs []error
	if l.inbox != nil {
		errs = append(errs, l.inbox.Close())
		l.inbox = nil
	}
	for i, r := range l.roots {
		if r != nil {
			errs = append(errs, r.Close())
			l.roots[i] = nil
		}
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
