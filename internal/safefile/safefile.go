// Package safefile creates the files a release writes where a user pointed
// it (--output, the work directory) without following a symbolic link out of
// place: a link planted there would otherwise have another file overwritten.
package safefile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Create creates or truncates the file at path, refusing a symbolic link.
func Create(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link: the release writes no file through one; remove it or give another path", path)
	}
	return f, err
}

// Dir makes sure the directory path exists and is not a symbolic link.
func Dir(path string) error {
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link: the release writes and clears what is in it, so give a real directory", path)
	}
	return os.MkdirAll(path, 0o755)
}
