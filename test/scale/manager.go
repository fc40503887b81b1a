/*
Copyright 2026 The ragops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildManager builds ./cmd/manager of src into dir.
func buildManager(src, dir string) (string, error) {
	bin := filepath.Join(dir, "manager")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/manager")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/manager in %s: %w\n%s", src, err, out)
	}
	return bin, nil
}

// manager is one running manager process.
type manager struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	// done is closed when the process exited; err is then its exit.
	done chan struct{}
	err  error
}

// startManager runs the manager binary with the benchmark's kubeconfig, the
// given extra flags and environment (NAME=value, over the benchmark's own);
// its log goes to workdir/<name>.log.
func startManager(bin, workdir, name, kubeconfig string, args, env []string) (*manager, error) {
	m := &manager{name: name, logPath: filepath.Join(workdir, name+".log"), done: make(chan struct{})}
	logFile, err := os.Create(m.logPath)
	if err != nil {
		return nil, err
	}
	all := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--ragserver-image=ragops/ragserver:0.0.0-bench",
	}, args...)
	m.cmd = exec.Command(bin, all...)
	m.cmd.Env = append(os.Environ(), env...)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	// The manager never outlives the benchmark.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() {
		m.err = m.cmd.Wait()
		logFile.Close()
		close(m.done)
	}()
	return m, nil
}

// waitLog waits until the manager's log contains s.
func (m *manager) waitLog(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		raw, err := os.ReadFile(m.logPath)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, []byte(s)) {
			return nil
		}
		select {
		case <-m.done:
			return fmt.Errorf("manager %s exited (%w) before logging %q; log %s:\n%s", m.name, m.err, s, m.logPath, tail(raw))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("manager %s did not log %q within %s; log %s:\n%s", m.name, s, timeout, m.logPath, tail(raw))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(raw []byte) string {
	if len(raw) > 4000 {
		raw = raw[len(raw)-4000:]
	}
	return string(raw)
}

// saveHeapProfile saves the manager's heap profile (after a collection) as
// workdir/heap.pprof, and its text form with the runtime's MemStats as
// workdir/heap.txt. The manager must serve pprof on pprofAddr.
func saveHeapProfile(pprofAddr, workdir string) error {
	for _, f := range []struct{ query, file string }{{"gc=1", "heap.pprof"}, {"gc=1&debug=1", "heap.txt"}} {
		resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap?" + f.query)
		if err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("heap profile: %s", resp.Status)
		}
		if err := os.WriteFile(filepath.Join(workdir, f.file), raw, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// freeLocalAddr returns a localhost address with a port free right now.
func freeLocalAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// procStats is what /proc says about a process.
type procStats struct {
	peakRSSKiB int64   // VmHWM
	cpuSeconds float64 // utime + stime
}

// stats reads the manager's peak RSS and CPU time; the process must be
// alive.
func (m *manager) stats() (procStats, error) {
	var st procStats
	pid := m.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				st.peakRSSKiB, _ = strconv.ParseInt(fields[0], 10, 64)
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the command name (which may hold spaces) start at
	// field 3: utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return st, errors.New("unexpected /proc/pid/stat")
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 {
		return st, errors.New("short /proc/pid/stat")
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	st.cpuSeconds = (utime + stime) / clockTicks
	return st, nil
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// stop sends SIGTERM and waits for the exit.
func (m *manager) stop(timeout time.Duration) error {
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-m.done:
		return nil
	case <-time.After(timeout):
		_ = m.cmd.Process.Kill()
		return fmt.Errorf("manager %s did not stop within %s", m.name, timeout)
	}
}

// kill sends SIGKILL and waits for the exit.
func (m *manager) kill() {
	_ = m.cmd.Process.Kill()
	<-m.done
}

// exited reports whether the process ended, and how.
func (m *manager) exited() (bool, error) {
	select {
	case <-m.done:
		return true, m.err
	default:
		return false, nil
	}
}
