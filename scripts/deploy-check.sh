#!/usr/bin/env bash
# make deploy-check: renders the Kubernetes overlays and checks them, and the
# compose file, with real tools (docs/DEPLOY.md, "make deploy-check"):
#
#   1. kubectl kustomize        deploy/k8s/overlays/{dev,prod} -> rendered YAML
#   2. kubernetes-validate      every object against Kubernetes' schemas,
#                               strictly (no unknown fields), for 1.32 and 1.37
#   3. checkov                  the Pod Security "restricted" checks and the
#                               rest of deploy/checkov.yaml
#   4. check-jsonschema         deploy/docker-compose.yml against the Compose
#                               Specification's schema
#   5. deploy/check_manifests.py  the restricted profile field by field and the
#                               deployment's own rules (also compose, the
#                               Dockerfile and the Grafana dashboard)
#
# Installs what is missing: kubectl (apt, as root) and the Python tools,
# pinned in deploy/deploy-check-requirements.txt, into .tools/venv. Any
# failure stops it with a non-zero exit and the step's name.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Kubernetes versions the manifests are validated against: the oldest
# cluster supported (docs/DEPLOY.md) and the newest schema the tool ships.
KUBE_VERSIONS=(1.32.0 1.37.0)
VENV=.tools/venv
REQUIREMENTS=deploy/deploy-check-requirements.txt

step() { printf '\n== %s\n' "$*"; }
fail() { printf '\ndeploy-check FAILED: %s\n' "$*" >&2; exit 1; }

kustomize_ok() {
  # kubectl with kustomize v5 or later (the overlays' patch targets need it).
  command -v kubectl >/dev/null 2>&1 || return 1
  local version
  version=$(kubectl version --client -o json 2>/dev/null \
    | sed -n 's/.*"kustomizeVersion": *"v\([0-9]*\)\..*/\1/p')
  [ -n "$version" ] && [ "$version" -ge 5 ]
}

install_kubectl() {
  if [ "$(id -u)" != 0 ]; then
    fail "kubectl with kustomize v5 (kubectl 1.27 or later) is missing; install it, e.g. 'sudo apt-get install kubectl'"
  fi
  echo "installing kubectl with apt-get"
  apt-get update -qq
  if apt-cache policy kubectl | grep -q 'Candidate: [0-9]'; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl
  else
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client
  fi
  kustomize_ok || fail "the kubectl apt installed has no kustomize v5; install kubectl 1.27 or later"
}

install_python_tools() {
  if [ ! -x "$VENV/bin/python" ]; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      [ "$(id -u)" = 0 ] || fail "python3 -m venv does not work here; install python3-venv"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
      rm -rf "$VENV"
      python3 -m venv "$VENV" || fail "cannot make $VENV"
    fi
  fi
  # Installed once per version of the requirements file.
  if ! cmp -s "$REQUIREMENTS" "$VENV/.deploy-check-requirements"; then
    echo "installing $(grep -c '==' "$REQUIREMENTS") pinned tools into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS" \
      || fail "pip install -r $REQUIREMENTS"
    cp "$REQUIREMENTS" "$VENV/.deploy-check-requirements"
  fi
}

started=$SECONDS
step "tools"
kustomize_ok || install_kubectl
install_python_tools
echo "kubectl $(kubectl version --client -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p'), $("$VENV/bin/checkov" --version 2>/dev/null | sed 's/^/checkov /'), kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -1), $("$VENV/bin/check-jsonschema" --version)"

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

step "kubectl kustomize deploy/k8s/overlays/{dev,prod}"
for overlay in dev prod; do
  kubectl kustomize "deploy/k8s/overlays/$overlay" >"$rendered/$overlay.yaml" \
    || fail "kubectl kustomize deploy/k8s/overlays/$overlay"
  echo "$overlay: $(grep -c '^kind:' "$rendered/$overlay.yaml") objects"
done

step "kubernetes-validate --strict (Kubernetes ${KUBE_VERSIONS[*]})"
for version in "${KUBE_VERSIONS[@]}"; do
  "$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" \
    "$rendered/dev.yaml" "$rendered/prod.yaml" \
    || fail "kubernetes-validate against Kubernetes $version"
  echo "$version: every object valid"
done

step "checkov (deploy/checkov.yaml)"
"$VENV/bin/checkov" --config-file deploy/checkov.yaml --directory "$rendered" \
  || fail "checkov"

step "check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml"
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml \
  || fail "check-jsonschema on deploy/docker-compose.yml"

step "deploy/check_manifests.py (restricted profile and the deployment's own rules)"
"$VENV/bin/python" deploy/check_manifests.py \
  --k8s "$rendered/dev.yaml" "$rendered/prod.yaml" \
  --compose deploy/docker-compose.yml --dockerfile deploy/Dockerfile \
  --dashboards deploy/grafana/dashboards --datasources deploy/grafana/provisioning/datasources \
  || fail "deploy/check_manifests.py"

printf '\ndeploy-check passed in %ss\n' "$((SECONDS - started))"
