//go:build !unix

package sqlitestore

// lockDir does not lock on this platform.
func lockDir(string) (func(), error) { return func() {}, nil }
