#!/usr/bin/env bash
# Called by scripts/build.sh before building netpol, with an empty folder $1: copies
# kube-network-policies v0.8.0 from the module cache to $1/module, makes it queue packets with the
# xtables NFQUEUE target instead of the nftables queue expression (which needs CONFIG_NFT_QUEUE;
# many kernels have only xt_NFQUEUE, and the whole rule set is then refused with ENOENT), and writes
# $1/go.mod (this go.mod plus a replace of the module by the copy) and $1/go.sum for -modfile.
set -euo pipefail
work=$1
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
src=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kube-network-policies)
[ -f "$src/pkg/networkpolicy/controller.go" ] || { echo "patch: $src/pkg/networkpolicy/controller.go not found" >&2; exit 1; }
cp -r "$src" "$work/module"
chmod -R u+w "$work/module"
c=$work/module/pkg/networkpolicy/controller.go
sed -i -e 's|queue := &expr.Queue{Num: uint16(c.config.QueueID)}|queue := nfqueueTarget(uint16(c.config.QueueID), c.config.FailOpen)|' \
  -e 's|queue.Flag = expr.QueueFlagBypass|// the bypass flag is set by nfqueueTarget|' \
  -e 's|podKey := c.nriPlugin.GetPodFromIP(podIP)|if c.nriPlugin == nil { return nil }; podKey := c.nriPlugin.GetPodFromIP(podIP)|' "$c"
# Exactly the two places that build the queue rules must have changed.
n=$(grep -c 'nfqueueTarget(uint16(c.config.QueueID), c.config.FailOpen)' "$c" || true)
m=$(grep -c 'expr.Queue' "$c" || true)
# And the lookup of an IP no pod has must not use the NRI plugin when NRI is off (upstream v0.8.0
# dereferences the nil plugin there and crashes on the first packet of a deleted pod's IP).
k=$(grep -c 'if c.nriPlugin == nil { return nil }' "$c" || true)
[ "$n" = 2 ] && [ "$m" = 0 ] && [ "$k" = 1 ] || { echo "patch: controller.go of this version does not match the patch ($n replaced, $m left)" >&2; exit 1; }
cp "$here/nfqueue_target.go.txt" "$work/module/pkg/networkpolicy/nfqueue_target.go"
{ cat go.mod; echo; echo "replace sigs.k8s.io/kube-network-policies => $work/module"; } >"$work/go.mod"
cp go.sum "$work/go.sum"
