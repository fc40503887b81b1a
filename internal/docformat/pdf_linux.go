package docformat

import "golang.org/x/sys/unix"

// limitMemory sets the address-space limit of process pid to at most n bytes
// (never above its current hard limit).
func limitMemory(pid int, n uint64) error {
	var cur unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_AS, nil, &cur); err != nil {
		return err
	}
	lim := unix.Rlimit{Cur: min(n, cur.Max), Max: min(n, cur.Max)}
	return unix.Prlimit(pid, unix.RLIMIT_AS, &lim, nil)
}
