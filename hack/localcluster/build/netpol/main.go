// kube-network-policies (sigs.k8s.io/kube-network-policies) as a host process of the local cluster:
// the upstream cmd/main.go without the in-cluster config (it reads --kubeconfig instead), without
// NRI (the cluster's containerd has no NRI socket) and with SIGTERM handled like SIGINT, so that
// `localcluster.sh down` (SIGTERM) lets the controller delete its nftables table.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

func main() { os.Exit(run()) }

func run() int {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster (required)")
	nodeName := flag.String("hostname-override", "", "name of this node (required)")
	queueID := flag.Int("nfqueue-id", 98, "number of the nfqueue used")
	failOpen := flag.Bool("fail-open", false, "accept packets while the controller is not running")
	c := logsapi.NewLoggingConfiguration()
	logsapi.AddGoFlags(c, flag.CommandLine)
	flag.Parse()
	logs.InitLogs()
	if err := logsapi.ValidateAndApply(c, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if *kubeconfig == "" || *nodeName == "" {
		fmt.Fprintln(os.Stderr, "--kubeconfig and --hostname-override are required")
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.ErrorS(err, "Reading the kubeconfig")
		return 1
	}
	config.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	config.ContentType = "application/vnd.kubernetes.protobuf"
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		klog.ErrorS(err, "Creating the client")
		return 1
	}
	factory := informers.NewSharedInformerFactory(clientset, 0)
	ctrl, err := networkpolicy.NewController(clientset,
		factory.Networking().V1().NetworkPolicies(), factory.Core().V1().Namespaces(), factory.Core().V1().Pods(),
		nil, nil, nil, nil,
		networkpolicy.Config{
			FailOpen:            *failOpen,
			QueueID:             *queueID,
			NodeName:            *nodeName,
			NetfilterBug1766Fix: true,
			NRIdisabled:         true,
		})
	if err != nil {
		klog.ErrorS(err, "Cannot start the network policy controller")
		return 1
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		utilruntime.HandleError(ctrl.Run(ctx))
	}()
	factory.Start(ctx.Done())
	<-ctx.Done()
	// Run removes the nftables table on its way out.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	return 0
}
