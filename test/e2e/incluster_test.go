//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// In-cluster clients: a pod that runs node (the local Chroma image has it) and is driven with
// kubectl exec. It sends requests through the Services, from inside the cluster, the way other
// workloads reach a RAG server, and so goes through kube-proxy and the NetworkPolicies.

// clientScript is the pod's program. Arguments: MODE URL [TOKEN].
//
//	probe:  one GET with a 3 s timeout; prints {"ok":true,"status":N} or {"ok":false,"error":"..."}.
//	query:  POST /query every 200 ms (5 requests a second, without waiting for answers) until
//	        stdin closes, then prints {"sent","ok","failed","errors":{reason:count}}.
//	write:  POST /documents one after the other, each a new document (source w-N.md), until stdin
//	        closes, then prints the same counts plus "acked": the N of every 2xx answer.
//
// Every request has a 10 s timeout; anything but a 2xx answer is a failure.
const clientScript = `
const [mode, url, token] = process.argv.slice(1);
const headers = {"Content-Type": "application/json"};
if (token) headers["Authorization"] = "Bearer " + token;
const call = async (method, path, body, ms) => {
  const r = await fetch(url + path, {method, headers, body: body && JSON.stringify(body), signal: AbortSignal.timeout(ms)});
  await r.text();
  if (r.status < 200 || r.status > 299) throw new Error("HTTP " + r.status);
  return r.status;
};
const reason = (e) => String((e.cause && e.cause.code) || e.name + ": " + e.message);
const out = {sent: 0, ok: 0, failed: 0, errors: {}, acked: []};
const fail = (e) => { out.failed++; const k = reason(e); out.errors[k] = (out.errors[k] || 0) + 1; };
let stop = false, pending = 0;
const finish = async () => {
  while (pending > 0) await new Promise((r) => setTimeout(r, 50));
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
};
if (mode === "probe") {
  call("GET", "", undefined, 3000)
    .then((s) => { process.stdout.write(JSON.stringify({ok: true, status: s}) + "\n"); process.exit(0); })
    .catch((e) => { process.stdout.write(JSON.stringify({ok: false, error: reason(e)}) + "\n"); process.exit(0); });
} else {
  process.stdin.on("data", () => {});
  process.stdin.on("end", () => { stop = true; });
  process.stdin.resume();
  if (mode === "query") {
    const tick = () => {
      if (stop) return finish();
      out.sent++; pending++;
      call("POST", "/query", {question: "How much did revenue grow in the third quarter?"}, 10000)
        .then(() => out.ok++, fail).finally(() => pending--);
      setTimeout(tick, 200);
    };
    tick();
  } else if (mode === "write") {
    (async () => {
      for (let i = 0; !stop; i++) {
        out.sent++;
        const doc = {source: "w-" + i + ".md", text: "Write " + i + ". The ledger entry tok" + i + "x records a transfer of " + i + " dollars."};
        try { await call("POST", "/documents", {documents: [doc]}, 10000); out.ok++; out.acked.push(i); }
        catch (e) { fail(e); await new Promise((r) => setTimeout(r, 250)); }
        await new Promise((r) => setTimeout(r, 100));
      }
      finish();
    })();
  } else {
    process.stderr.write("unknown mode " + mode + "\n"); process.exit(2);
  }
}
`

// clientPodManifest is a pod that idles until kubectl exec runs the client script in it.
func clientPodManifest(ns, name string) string {
	repo, tag := splitImage(chromaImage)
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %[2]s
  namespace: %[1]s
  labels: {app: %[2]s}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: client
    image: %[3]s:%[4]s
    imagePullPolicy: IfNotPresent
    command: ["node", "-e", "setInterval(() => {}, 1 << 30)"]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`, ns, name, repo, tag)
}

// startClientPod creates the client pod and waits until it is ready.
func startClientPod(t *testing.T, ns, name string) {
	t.Helper()
	kubectlApply(t, clientPodManifest(ns, name))
	kubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pod/"+name, "--timeout=3m")
}

// probeResult is the answer of one probe.
type probeResult struct {
	OK     bool   `json:"ok"`
	Status int    `json:"status"`
	Error  string `json:"error"`
}

// probe sends one GET from the client pod to url.
func probe(t *testing.T, ns, pod, url string) probeResult {
	t.Helper()
	out := kubectl(t, "-n", ns, "exec", pod, "--", "node", "-e", clientScript, "probe", url)
	var r probeResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		t.Fatalf("probe %s: %q: %v", url, out, err)
	}
	return r
}

// loadResult is what a query or write loop counted.
type loadResult struct {
	Sent   int            `json:"sent"`
	OK     int            `json:"ok"`
	Failed int            `json:"failed"`
	Errors map[string]int `json:"errors"`
	Acked  []int          `json:"acked"`
}

func (r loadResult) String() string {
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []string
	for _, k := range keys {
		errs = append(errs, fmt.Sprintf("%s x%d", k, r.Errors[k]))
	}
	return fmt.Sprintf("%d sent, %d ok, %d failed %v", r.Sent, r.OK, r.Failed, errs)
}

// load is a running query or write loop in the client pod.
type load struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{}
	result loadResult
	err    error
}

// startLoad starts a loop (mode query or write) in the client pod against url.
func startLoad(t *testing.T, ns, pod, mode, url, token string) *load {
	t.Helper()
	cmd := exec.Command(kubectlBin, "-n", ns, "exec", "-i", pod, "--", "node", "-e", clientScript, mode, url, token)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l := &load{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		data, _ := io.ReadAll(stdout)
		if err := cmd.Wait(); err != nil {
			l.err = fmt.Errorf("kubectl exec %s: %w (output %q)", mode, err, data)
			return
		}
		l.err = json.Unmarshal([]byte(strings.TrimSpace(string(data))), &l.result)
	}()
	t.Cleanup(func() {
		select {
		case <-l.done:
		default:
			_ = cmd.Process.Kill()
		}
	})
	return l
}

// stop ends the loop (it finishes the requests in flight) and returns its counts.
func (l *load) stop(t *testing.T) loadResult {
	t.Helper()
	_ = l.stdin.Close()
	select {
	case <-l.done:
	case <-time.After(time.Minute):
		_ = l.cmd.Process.Kill()
		t.Fatal("the load loop did not stop within a minute")
	}
	if l.err != nil {
		t.Fatal(l.err)
	}
	return l.result
}

// chromaWitness records, from outside, how many Chroma processes use the volume at once:
//   - a watch of the vector-store pods (kubectl get -w): every status change the kubelet reports,
//     counting the pods whose chroma container runs;
//   - on the local cluster (whose containers are processes of this host), /proc every 0.5 s:
//     the Chroma server processes (node .../chromadb/dist/cli.mjs run --path /data).
type chromaWitness struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu            sync.Mutex
	running       map[string]bool // pod UID -> chroma container running
	maxPods       int
	events        int
	maxProcs      int
	samples       int
	sawProcess    bool
	overlapDetail []string
}

func watchChroma(t *testing.T, rag string, procs bool) *chromaWitness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &chromaWitness{cancel: cancel, running: map[string]bool{}}
	cmd := exec.CommandContext(ctx, kubectlBin, "-n", appNS, "get", "pods", "-w", "--output-watch-events", "-o", "json",
		"-l", "app.kubernetes.io/instance="+rag+",app.kubernetes.io/component=vector-store")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		dec := json.NewDecoder(bufio.NewReader(stdout))
		for {
			var ev struct {
				Type   string `json:"type"`
				Object struct {
					Metadata struct {
						Name string `json:"name"`
						UID  string `json:"uid"`
					} `json:"metadata"`
					Status struct {
						ContainerStatuses []struct {
							Name  string `json:"name"`
							State struct {
								Running *struct{} `json:"running"`
							} `json:"state"`
						} `json:"containerStatuses"`
					} `json:"status"`
				} `json:"object"`
			}
			if err := dec.Decode(&ev); err != nil {
				_ = cmd.Wait()
				return
			}
			pod := ev.Object
			run := false
			for _, c := range pod.Status.ContainerStatuses {
				if c.Name == "chroma" && c.State.Running != nil && ev.Type != "DELETED" {
					run = true
				}
			}
			w.mu.Lock()
			w.events++
			w.running[pod.Metadata.UID] = run
			n := 0
			var names []string
			for uid, r := range w.running {
				if r {
					n++
					names = append(names, uid[:8])
				}
			}
			if n > w.maxPods {
				w.maxPods = n
			}
			if n > 1 {
				w.overlapDetail = append(w.overlapDetail, fmt.Sprintf("%s: pods %v run Chroma at once", time.Now().Format(time.StampMilli), names))
			}
			w.mu.Unlock()
		}
	}()
	if procs {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for {
				n := chromaProcesses()
				w.mu.Lock()
				w.samples++
				if n > 0 {
					w.sawProcess = true
				}
				if n > w.maxProcs {
					w.maxProcs = n
				}
				if n > 1 {
					w.overlapDetail = append(w.overlapDetail, fmt.Sprintf("%s: %d Chroma processes", time.Now().Format(time.StampMilli), n))
				}
				w.mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	return w
}

// chromaProcesses counts this host's Chroma server processes on /data.
func chromaProcesses() int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		c := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(c, "chromadb/dist/cli.mjs run") && strings.Contains(c, "--path /data") {
			n++
		}
	}
	return n
}

func (w *chromaWitness) stop() {
	w.cancel()
	w.wg.Wait()
}
