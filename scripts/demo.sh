#!/usr/bin/env bash
# make demo: the seed's story (docs: ../shared/seed), told step by step on a real etcd.
# Exit status 0 only if every step really worked. Everything it starts, it stops.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
work=$(mktemp -d /tmp/minikube-py-demo.XXXXXX)
port=${DEMO_PORT:-8080}
etcd_port=${DEMO_ETCD_PORT:-2379}
node=${DEMO_NODE:-$(hostname | tr '[:upper:]' '[:lower:]')}
server="http://127.0.0.1:$port"
export KUBECONFIG="$work/kubeconfig" KUBECACHEDIR="$work/kube-cache"
pids=()

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
    local limit=$1 what=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "timed out waiting for $what"
        sleep 0.5
    done
}
cleanup() {
    set +e
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    ids=$(docker ps -aq --filter "label=io.minikube-py.node=$node")
    [[ -n $ids ]] && docker rm -f $ids >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

step "Start an etcd (the seed's first step), on 127.0.0.1:$etcd_port"
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" >"$work/etcd.log" 2>&1 &
pids+=($!)
wait_for 20 "etcd" curl -sf "http://127.0.0.1:$etcd_port/health"

step "Start minikube-py on that etcd: API server, scheduler, controllers and a Docker kubelet"
.venv/bin/minikube-py up --etcd-servers="http://127.0.0.1:$etcd_port" --data-dir "$work/data" \
    --port "$port" --node-name "$node" --no-update-kubeconfig >"$work/up.log" 2>&1 &
pids+=($!)
wait_for 30 "the API server" curl -sf "$server/readyz"
cp "$work/data/kubeconfig" "$KUBECONFIG" 2>/dev/null || wait_for 30 "the kubeconfig" cp "$work/data/kubeconfig" "$KUBECONFIG"

step "Check what nodes the cluster has"
items() { python3 -c 'import json, sys; print(json.dumps([i["metadata"] for i in json.load(sys.stdin)["items"]], indent=2)[:1500])'; }
run curl --stderr /dev/null "$server/api/v1/nodes" | items
wait_for 30 "node $node Ready" sh -c "kubectl get node $node -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
run kubectl get nodes

step "Run the seed's pod via the API server (busybox httpd in place of nginx)"
sed "s/NODE/$node/" <<'YAML' >"$work/nginx.yaml"
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  nodeName: NODE
  containers:
  - name: nginx
    image: busybox:1.35
    command: [sh, -c, 'mkdir -p /www && echo "Welcome to minikube-py!" > /www/index.html && exec httpd -f -p 80 -h /www']
    ports:
    - containerPort: 80
    volumeMounts:
    - mountPath: /var/log/nginx
      name: nginx-logs
  - name: log-truncator
    image: busybox
    command:
    - /bin/sh
    args: [-c, 'while true; do cat /dev/null > /logdir/access.log; sleep 10; done']
    volumeMounts:
    - mountPath: /logdir
      name: nginx-logs
  volumes:
  - name: nginx-logs
    emptyDir: {}
YAML
run curl --stderr /dev/null --request POST "$server/api/v1/namespaces/default/pods" \
    -H "Content-Type: application/yaml" --data-binary @"$work/nginx.yaml" >/dev/null
wait_for 60 "the pod to be 2/2 Running" sh -c "kubectl get pod nginx --no-headers | grep -q '2/2 *Running'"
run docker ps --filter "label=io.minikube-py.node=$node" --format 'table {{.Image}}\t{{.Status}}\t{{.Names}}'

step "Reach the pod at its podIP"
ip=$(kubectl get pod nginx -o jsonpath='{.status.podIP}')
run curl --stderr /dev/null "http://$ip/" | grep -q "Welcome to minikube-py" || fail "the pod did not serve"
echo "http://$ip/ says: $(curl -s "http://$ip/")"

step "kubectl instead of curl"
run kubectl get nodes
run kubectl get pods
kubectl get pods --no-headers | grep -q "nginx *2/2 *Running" || fail "kubectl get pods"

if kubectl api-resources | grep -q deployments && [[ -n $(.venv/bin/python -c 'from minikube_py import components; print(" ".join(components.ALL))') ]]; then
    step "A Deployment without nodeName: the scheduler places it; scale it with kubectl"
    run kubectl create deployment web --image=busybox:1.35 -- httpd -f -p 8080
    run kubectl scale deployment web --replicas=3
    wait_for 90 "3 ready replicas" sh -c "kubectl get deploy web -o jsonpath='{.status.readyReplicas}' | grep -qx 3"
    run kubectl get pods -o wide
fi

step "Clean up"
run kubectl delete pod nginx --grace-period=1
echo "demo: every step worked"
