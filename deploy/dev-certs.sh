#!/bin/sh
# Development certificates for mutual TLS between the services: a CA of
# their own, records' server certificate and scheduling's client
# certificate. For a laptop (docker-compose.yml's `certs` service runs it)
# and a development cluster (deploy/k8s/dev-certs.sh); production issues
# its own (docs/DEPLOY.md, "Certificates").
#
#   deploy/dev-certs.sh OUTDIR [OWNER]
#
# OUTDIR/records/{tls.crt,tls.key,ca.crt} and OUTDIR/scheduling/{...}, the
# layout of the Kubernetes Secrets medsec-records-tls and medsec-peer-tls.
# Kept while valid for another day; made anew otherwise. OWNER (uid:gid)
# gets the files, e.g. 10001:10001 for the medsec image's user.
set -eu

out=${1:?usage: dev-certs.sh OUTDIR [OWNER]}
owner=${2:-}
days=365

valid() {
  [ -f "$1" ] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1
}

if valid "$out/ca.crt" && valid "$out/records/tls.crt" && valid "$out/scheduling/tls.crt"; then
  echo "dev-certs: $out is still valid"
  exit 0
fi

mkdir -p "$out/records" "$out/scheduling"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The services' CA: it signs records' server certificate and the services'
# client certificates, so one ca.crt checks both directions.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=medsec development services CA" -days $((days * 2)) \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null

# issue NAME CN EXTENSIONS: a P-256 key and a certificate signed by the CA.
issue() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$work/$1.key" -out "$work/$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$work/$1.ext"
  openssl x509 -req -in "$work/$1.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -days "$days" -extfile "$work/$1.ext" -out "$work/$1.crt" 2>/dev/null
}

# Records serves TLS under every name it is dialled by: the compose and
# Kubernetes service names, the headless Service, and this machine.
issue records records "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:records,DNS:records.medsec.svc,DNS:records.medsec.svc.cluster.local,DNS:records-headless.medsec.svc.cluster.local,DNS:localhost,IP:127.0.0.1"

# Scheduling's identity as a service principal: its first DNS name.
issue scheduling scheduling "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=DNS:scheduling.medsec.internal"

for name in records scheduling; do
  cp "$work/$name.crt" "$out/$name/tls.crt"
  cp "$work/$name.key" "$out/$name/tls.key"
  cp "$work/ca.crt" "$out/$name/ca.crt"
done
cp "$work/ca.crt" "$out/ca.crt"
chmod 0444 "$out/ca.crt" "$out"/*/tls.crt "$out"/*/ca.crt
chmod 0400 "$out"/*/tls.key
if [ -n "$owner" ]; then
  chown -R "$owner" "$out"
fi
echo "dev-certs: wrote $out (records: server; scheduling: client scheduling.medsec.internal)"
