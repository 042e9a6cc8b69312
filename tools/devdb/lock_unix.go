//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockRetryInterval is how often a busy data directory lock is retried.
const lockRetryInterval = 50 * time.Millisecond

// lockDataDir takes an exclusive advisory lock on dir/devdb.lock so that two devdb
// processes never serve the same SQLite files. The lock dies with the process.
// While another process holds it, lockDataDir retries for up to wait
// (a restarting parent's previous devdb may still be shutting down).
func lockDataDir(dir string, wait time.Duration) (func(), error) {
	path := filepath.Join(dir, "devdb.lock")

	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}

	deadline := time.Now().Add(wait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			break
		}
		time.Sleep(lockRetryInterval)
	}

	_ = f.Close()
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("data directory %s is in use by another devdb process", dir)
	}
	return nil, fmt.Errorf("lock data directory: %w", err)
}
