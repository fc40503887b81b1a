//go:build !linux

package docformat

// limitMemory does nothing outside Linux (no prlimit): pdftotext is bounded
// in time only.
func limitMemory(int, uint64) error { return nil }
