//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	// scaleNS is the autoscaling test's own namespace.
	scaleNS = "ragops-e2e-autoscaling"
	// scaleDownWindow is the RagService's scaleDownStabilizationSeconds:
	// shortened from the HPA default of 300 s so the test sees the way down.
	scaleDownWindow = 30 * time.Second
)

// TestAutoscalingOnCluster is the autoscaling phase of issue 14, on a real
// cluster with a real metrics-server (built from its Go module by
// hack/e2e.sh) reached through the API server's aggregation layer, and the
// real HPA controller: a RagService with autoscaling 1..3 on CPU scales up
// under load driven from inside the cluster, and back down once the load
// stops. It prints the times.
//
// Self-contained: it installs metrics-server, the operator (when it is
// absent, as TestEndToEnd leaves the cluster) and its workload (its own
// namespace), and removes what it installed again, also when it fails, so
// the other tests run on the same cluster after it. `make
// test-e2e-autoscaling` runs it alone.
//
// Environment: that of TestEndToEnd, plus RAGOPS_METRICS_SERVER_IMAGE.
func TestAutoscalingOnCluster(t *testing.T) {
	readEnv(t)
	metricsServerImage := mustEnv(t, "RAGOPS_METRICS_SERVER_IMAGE")
	msManifest := metricsServerManifest(metricsServerImage)
	// Cleanups run after the deferred calls below, so the failure
	// artifacts are collected before anything is removed.
	removed, ownOperator := false, false
	t.Cleanup(func() {
		if !removed {
			removeAutoscalingSetup(t, msManifest, ownOperator)
		}
	})
	defer func() {
		timingsMu.Lock()
		defer timingsMu.Unlock()
		fmt.Fprintf(os.Stderr, "\nautoscaling e2e timings:\n%s\n", strings.Join(timings, "\n"))
	}()
	defer dumpOnFailure(t, "kube-system", scaleNS)

	end := phase(t, "A0 metrics-server v0.8.0 (--kubelet-insecure-tls); node metrics served")
	kubectlApply(t, msManifest)
	waitRolledOut(t, "kube-system", "metrics-server")
	// kubectl top goes through the aggregation layer: the API server proxies
	// to metrics-server with its front-proxy client certificate and the
	// caller's identity, which metrics-server authorises with a
	// SubjectAccessReview.
	eventually(t, "kubectl top nodes answers", 3*time.Minute, func() error {
		_, err := cmdRun(t, "", kubectlBin, "top", "nodes")
		return err
	})
	end()

	end = phase(t, "A0 helm install ragops (absent); fake model API")
	if !operatorInstalled(t) {
		ownOperator = true
		installOperator(t)
	} else {
		t.Log("the release ragops is installed already: using it")
	}
	kubectl(t, "create", "namespace", scaleNS)
	kubectlApply(t, fakeServerManifestIn(scaleNS, "key-1"))
	kubectlApply(t, apiKeySecretIn(scaleNS, "openai", "key-1"))
	kubectlApply(t, docsConfigMapIn(scaleNS))
	waitRolledOut(t, scaleNS, fakeName)
	end()

	const name = "burst"
	end = phase(t, "A1 RagService with autoscaling 1..3 on CPU; Ready with an HPA")
	kubectlApply(t, ragServiceIn(scaleNS, name, "openai", "fake-chat-1", 1, "Delete", fmt.Sprintf(`  auth:
    mode: Disabled
  server:
    resources:
      requests:
        cpu: 50m
  autoscaling:
    minReplicas: 1
    maxReplicas: 3
    targetCPUUtilizationPercentage: 50
    scaleDownStabilizationSeconds: %d
`, int(scaleDownWindow.Seconds()))))
	waitReadyIn(t, scaleNS, name, 5*time.Minute)
	eventually(t, "the HPA reads the pods' CPU", 3*time.Minute, func() error {
		h, err := getHPA(t, name)
		if err != nil {
			return err
		}
		if h.Spec.ScaleTargetRef.Kind != "RagService" || h.Spec.MinReplicas != 1 || h.Spec.MaxReplicas != 3 {
			return fmt.Errorf("HPA spec %+v", h.Spec)
		}
		if len(h.Status.CurrentMetrics) == 0 {
			return fmt.Errorf("no current metrics yet (conditions %s)", h.Status.Conditions)
		}
		return nil
	})
	t.Logf("kubectl get rag -o wide:\n%s", kubectl(t, "-n", scaleNS, "get", "rag", name, "-o", "wide"))
	end()

	end = phase(t, "A2 load from inside the cluster until 3 ready replicas")
	loadStart := time.Now()
	kubectlApply(t, loadManifest(name))
	var firstScale time.Duration
	eventually(t, "the HPA asks for more than one replica", 5*time.Minute, func() error {
		h, err := getHPA(t, name)
		if err != nil {
			return err
		}
		if h.Status.DesiredReplicas <= 1 {
			return fmt.Errorf("desired %d, metrics %s", h.Status.DesiredReplicas, h.Status.CurrentMetrics)
		}
		firstScale = time.Since(loadStart)
		return nil
	})
	eventually(t, "3 ready server pods", 5*time.Minute, func() error {
		r, err := getRagIn(t, scaleNS, name)
		if err != nil {
			return err
		}
		if n := readyServerPodsIn(t, scaleNS, name); n != 3 || r.Status.ReadyReplicas != 3 {
			return fmt.Errorf("ready pods %d, status.readyReplicas %d", n, r.Status.ReadyReplicas)
		}
		return nil
	})
	upTo3 := time.Since(loadStart)
	t.Logf("kubectl get rag -o wide under load:\n%s", kubectl(t, "-n", scaleNS, "get", "rag", name, "-o", "wide"))
	end()

	end = phase(t, "A3 stop the load; back to one replica")
	kubectl(t, "-n", scaleNS, "delete", "deployment", "load", "--wait=true")
	loadStop := time.Now()
	eventually(t, "one server pod again", 6*time.Minute, func() error {
		r, err := getRagIn(t, scaleNS, name)
		if err != nil {
			return err
		}
		if n := readyServerPodsIn(t, scaleNS, name); n != 1 || r.Status.Replicas != 1 {
			return fmt.Errorf("ready pods %d, status.replicas %d", n, r.Status.Replicas)
		}
		return nil
	})
	downTo1 := time.Since(loadStop)
	waitReadyIn(t, scaleNS, name, 2*time.Minute)
	end()

	report := fmt.Sprintf("autoscaling: load start -> HPA asks for more: %s; -> 3 ready replicas: %s; load stop -> 1 replica: %s (scale-down window %s)",
		firstScale.Round(time.Second), upTo3.Round(time.Second), downTo1.Round(time.Second), scaleDownWindow)
	t.Log(report)
	timingsMu.Lock()
	timings = append(timings, report)
	timingsMu.Unlock()

	end = phase(t, "A4 remove the RagService, the operator and metrics-server; nothing left")
	removed = true
	removeAutoscalingSetup(t, msManifest, ownOperator)
	if !ownOperator {
		if out := kubectl(t, "get", "namespace", scaleNS, "--ignore-not-found", "-o", "name"); out != "" {
			t.Errorf("namespace %s is left behind", scaleNS)
		}
		end()
		return
	}
	// The garbage collector removes metrics-server's pod after its
	// Deployment: poll for it.
	eventually(t, "no pod or PVC left but the cluster's own", 2*time.Minute, func() error {
		out := kubectl(t, "get", "pods,pvc", "-A", "-o", `jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}{"\n"}{end}`)
		var left []string
		for _, l := range strings.Fields(out) {
			if !strings.HasPrefix(l, "Pod/kube-system/") || strings.HasPrefix(l, "Pod/kube-system/metrics-server") {
				left = append(left, l)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("left behind: %s", strings.Join(left, ", "))
		}
		return nil
	})
	if out := kubectl(t, "get", "apiservices", "-o", "name"); strings.Contains(out, "metrics.k8s.io") {
		t.Errorf("the metrics APIService is left behind")
	}
	end()
}

// removeAutoscalingSetup removes what TestAutoscalingOnCluster installed, in
// the order that leaves no dangling part: the RagService (its Chroma volume
// with it, retention Delete) while the operator still runs, the operator, its
// CRD (helm keeps CRDs) and namespace when the test installed them
// (ownOperator), the test's namespace, then metrics-server (the APIService
// first, so API discovery never meets an unavailable group). It also runs
// after a failure at any phase: whatever is not there is skipped.
func removeAutoscalingSetup(t *testing.T, msManifest string, ownOperator bool) {
	t.Helper()
	var steps [][]string
	if crd, err := cmdRun(t, "", kubectlBin, "get", "crd", "ragservices.rag.ragops.dev", "--ignore-not-found", "-o", "name"); err != nil || crd != "" {
		steps = append(steps, []string{kubectlBin, "-n", scaleNS, "delete", "rag", "--all", "--wait=true", "--timeout=3m", "--ignore-not-found"})
	}
	if ownOperator {
		steps = append(steps, [][]string{
			{helmBin, "uninstall", "ragops", "--namespace", releaseNS, "--wait", "--timeout", "2m", "--ignore-not-found"},
			{kubectlBin, "delete", "crd", "ragservices.rag.ragops.dev", "--wait=true", "--ignore-not-found"},
			{kubectlBin, "delete", "namespace", releaseNS, "--wait=true", "--timeout=3m", "--ignore-not-found"},
		}...)
	}
	steps = append(steps, [][]string{
		{kubectlBin, "delete", "namespace", scaleNS, "--wait=true", "--timeout=3m", "--ignore-not-found"},
		{kubectlBin, "delete", "apiservice", "v1beta1.metrics.k8s.io", "--ignore-not-found"},
	}...)
	for _, s := range steps {
		if _, err := cmdRun(t, "", s[0], s[1:]...); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if _, err := cmdRun(t, msManifest, kubectlBin, "delete", "-f", "-", "--wait=true", "--ignore-not-found"); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

type hpaState struct {
	Spec struct {
		ScaleTargetRef struct{ Kind, Name string } `json:"scaleTargetRef"`
		MinReplicas    int32                       `json:"minReplicas"`
		MaxReplicas    int32                       `json:"maxReplicas"`
	} `json:"spec"`
	Status struct {
		CurrentReplicas int32             `json:"currentReplicas"`
		DesiredReplicas int32             `json:"desiredReplicas"`
		CurrentMetrics  json.RawMessage   `json:"currentMetrics"`
		Conditions      []json.RawMessage `json:"conditions"`
	} `json:"status"`
}

func getHPA(t *testing.T, name string) (*hpaState, error) {
	out, err := cmdRun(t, "", kubectlBin, "-n", scaleNS, "get", "hpa", name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var h hpaState
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		return nil, err
	}
	if string(h.Status.CurrentMetrics) == "null" {
		h.Status.CurrentMetrics = nil
	}
	return &h, nil
}

// loadManifest drives /query at the RagService from inside the cluster: 8
// concurrent loops in Node (the local Chroma image carries Node and its
// fetch), through the Service, as any client in the namespace.
func loadManifest(rag string) string {
	script := fmt.Sprintf(`const url = "http://%s.%s.svc/query";
const body = JSON.stringify({question: "How much did revenue grow in the third quarter?"});
let n = 0, failed = 0;
async function loop() {
  for (;;) {
    try {
      const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body});
      await r.text();
      if (r.status !== 200) failed++;
    } catch (e) { failed++; }
    n++;
  }
}
setInterval(() => console.log(JSON.stringify({requests: n, failed})), 10000);
for (let i = 0; i < 8; i++) loop();`, rag, scaleNS)
	quoted, _ := json.Marshal(script)
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: load
  namespace: %[1]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: load}
  template:
    metadata:
      labels: {app: load}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: load
        image: %[2]s
        imagePullPolicy: IfNotPresent
        command: ["node", "-e", %[3]s]
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
`, scaleNS, chromaImage, quoted)
}

// metricsServerManifest is metrics-server v0.8.0's own components.yaml with
// one change: --kubelet-insecure-tls, the flag metrics-server documents for
// kubelets whose serving certificates it cannot verify. Requests reach it
// through the aggregation layer: the API server's front-proxy client
// certificate and X-Remote-* headers (hack/localcluster/scripts/up.sh),
// checked by metrics-server with a delegated SubjectAccessReview.
func metricsServerManifest(image string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: metrics-server
  namespace: kube-system
  labels: {k8s-app: metrics-server}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:aggregated-metrics-reader
  labels:
    k8s-app: metrics-server
    rbac.authorization.k8s.io/aggregate-to-admin: "true"
    rbac.authorization.k8s.io/aggregate-to-edit: "true"
    rbac.authorization.k8s.io/aggregate-to-view: "true"
rules:
- apiGroups: [metrics.k8s.io]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:metrics-server
  labels: {k8s-app: metrics-server}
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: metrics-server-auth-reader
  namespace: kube-system
  labels: {k8s-app: metrics-server}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: metrics-server:system:auth-delegator
  labels: {k8s-app: metrics-server}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:metrics-server
  labels: {k8s-app: metrics-server}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:metrics-server}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
  labels: {k8s-app: metrics-server}
spec:
  selector: {k8s-app: metrics-server}
  ports: [{name: https, port: 443, protocol: TCP, targetPort: https}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: metrics-server
  namespace: kube-system
  labels: {k8s-app: metrics-server}
spec:
  selector:
    matchLabels: {k8s-app: metrics-server}
  strategy: {rollingUpdate: {maxUnavailable: 0}}
  template:
    metadata:
      labels: {k8s-app: metrics-server}
    spec:
      serviceAccountName: metrics-server
      priorityClassName: system-cluster-critical
      containers:
      - name: metrics-server
        image: %s
        imagePullPolicy: IfNotPresent
        args:
        - --cert-dir=/tmp
        - --secure-port=10250
        - --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname
        - --kubelet-use-node-status-port
        - --metric-resolution=15s
        - --kubelet-insecure-tls
        ports: [{containerPort: 10250, name: https, protocol: TCP}]
        readinessProbe:
          httpGet: {path: /readyz, port: https, scheme: HTTPS}
          initialDelaySeconds: 20
          periodSeconds: 10
          failureThreshold: 3
        livenessProbe:
          httpGet: {path: /livez, port: https, scheme: HTTPS}
          periodSeconds: 10
          failureThreshold: 3
        resources: {requests: {cpu: 100m, memory: 200Mi}}
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
          readOnlyRootFilesystem: true
          runAsNonRoot: true
          runAsUser: 1000
          seccompProfile: {type: RuntimeDefault}
        volumeMounts: [{mountPath: /tmp, name: tmp-dir}]
      volumes: [{emptyDir: {}, name: tmp-dir}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
  labels: {k8s-app: metrics-server}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service: {name: metrics-server, namespace: kube-system}
`, image)
}
