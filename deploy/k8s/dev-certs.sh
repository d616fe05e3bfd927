#!/usr/bin/env bash
# The two TLS Secrets of a development cluster, from development
# certificates (deploy/dev-certs.sh): medsec-records-tls (records' server
# certificate, and the CA of the services' client certificates) and
# medsec-peer-tls (scheduling's client certificate, and the CA of records'
# server certificate). Production issues its own (docs/DEPLOY.md).
#
#   deploy/k8s/dev-certs.sh [NAMESPACE]      # default medsec
#   deploy/k8s/dev-certs.sh --print          # the Secrets as YAML, applied nowhere
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
print=false
namespace=medsec
for arg in "$@"; do
  case "$arg" in
    --print) print=true ;;
    *) namespace=$arg ;;
  esac
done

certs=$(mktemp -d)
trap 'rm -rf "$certs"' EXIT
sh "$here/../dev-certs.sh" "$certs" >/dev/null

secrets() {
  kubectl create secret generic medsec-records-tls --namespace "$namespace" \
    --from-file="$certs/records" --dry-run=client -o yaml
  echo ---
  kubectl create secret generic medsec-peer-tls --namespace "$namespace" \
    --from-file="$certs/scheduling" --dry-run=client -o yaml
}

if $print; then
  secrets
else
  kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace"
  secrets | kubectl apply -f -
fi
