#!/usr/bin/env bash
# Applies an overlay in the order the suite needs: the migration Job runs to
# completion, as the tables' owner, before the services (which neither
# migrate nor create tables) start serving.
#
#   deploy/k8s/apply.sh deploy/k8s/overlays/prod
#
# 1. delete the last release's Job (its pod template cannot change, and a new
#    image must migrate again; migrating twice is harmless),
# 2. apply everything but the servers: namespace, accounts, Secrets and
#    ConfigMaps of the overlay, network policies, NATS, the Job,
# 3. wait for the Job to complete (or fail, printing its log),
# 4. apply everything, and wait for the three rollouts.
# Argo CD does the same through the annotations (docs/DEPLOY.md).
set -euo pipefail

overlay=${1:?usage: deploy/k8s/apply.sh OVERLAY_DIR}
namespace=medsec
timeout=${MEDSEC_MIGRATE_TIMEOUT:-900}

kubectl delete job medsec-migrate --namespace "$namespace" --ignore-not-found --wait=true
kubectl apply -k "$overlay" --selector 'app.kubernetes.io/component!=server'

echo "waiting for job/medsec-migrate (up to ${timeout}s)"
deadline=$((SECONDS + timeout))
while :; do
  complete=$(kubectl get job medsec-migrate --namespace "$namespace" \
    -o jsonpath='{.status.conditions[?(@.type=="Complete")].status}')
  failed=$(kubectl get job medsec-migrate --namespace "$namespace" \
    -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}')
  if [ "$complete" = True ]; then
    break
  fi
  if [ "$failed" = True ] || [ "$SECONDS" -ge "$deadline" ]; then
    echo "job/medsec-migrate did not complete; its log:" >&2
    kubectl logs --namespace "$namespace" job/medsec-migrate --tail=50 >&2 || true
    exit 1
  fi
  sleep 3
done

kubectl apply -k "$overlay"
for name in records scheduling billing; do
  kubectl rollout status --namespace "$namespace" "deployment/$name" --timeout=10m
done
