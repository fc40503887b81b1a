// Package crash holds the crash-loop tests: the real ragserver binary killed
// with SIGKILL while it writes, again and again, on one DATA_DIR (make test
// runs 50 kills; make soak runs RAGOPS_SOAK_KILLS, 500 by default), and the
// real "ragserver ingest" killed mid-run, then re-run to completion.
package crash
