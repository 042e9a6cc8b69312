//go:build !unix

package main

import "time"

// lockDataDir is a no-op where flock(2) is unavailable.
func lockDataDir(string, time.Duration) (func(), error) {
	return func() {}, nil
}
