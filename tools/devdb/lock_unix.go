//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataDir takes an exclusive advisory lock on dir/devdb.lock so that two devdb
// processes never serve the same SQLite files. The lock dies with the process.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, "devdb.lock")

	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}

	if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another devdb process", dir)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}

	return func() { _ = f.Close() }, nil
}
