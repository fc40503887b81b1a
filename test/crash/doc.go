// Package crash holds the crash-loop test of the RAG server: the real binary
// killed with SIGKILL while it writes, again and again, on one DATA_DIR
// (make test runs 50 kills; make soak runs RAGOPS_SOAK_KILLS, 500 by default).
package crash
