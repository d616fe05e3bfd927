"""The deployment's own rules, checked on what `kubectl kustomize` renders
and on the compose file and Dockerfile (scripts/deploy-check.sh runs it
after kubernetes-validate and checkov).

  python deploy/check_manifests.py --k8s RENDERED.yaml [...] --compose FILE --dockerfile FILE \
      --dashboards deploy/grafana/dashboards --datasources deploy/grafana/provisioning/datasources

The Pod Security "restricted" profile, field by field as the Kubernetes
documentation states it (baseline's rules included), plus what
docs/DEPLOY.md promises: read-only root filesystems, numeric users, no
service-account token, a startup probe, resources, secrets from Secret
objects only, images by digest, an autoscaler, a disruption budget and a
headless Service per service, and network policies that deny by default and
open no path to everyone; compose ports on 127.0.0.1 only and images by
digest; the Dockerfile's bases by digest; every dashboard query valid PromQL.
Prints every violation and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import json

import promql_parser
import yaml

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}
# Pod Security "restricted": the only volume types allowed.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}
# Pod Security "baseline": the only sysctls allowed.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# Settings that carry credentials: they must come from a Secret.
SECRET_SETTINGS = {
    "MEDSEC__DATABASE__URL", "MEDSEC__DATABASE__MIGRATION_URL", "MEDSEC__SERVER__PAGE_TOKEN_KEY",
}
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+:[^/@\s]+@")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# The exceptions docs/DEPLOY.md documents; checkov skip annotations may name
# no other check.
DOCUMENTED_SKIPS = {"CKV_K8S_43"}


class Report:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")


def pod_spec(doc: dict) -> dict | None:
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if kind in WORKLOADS:
        return spec.get("template", {}).get("spec")
    return None


def skipped(doc: dict, check: str) -> bool:
    """A checkov skip annotation names `check` (a documented exception)."""
    annotations = doc.get("metadata", {}).get("annotations") or {}
    return any(
        key.startswith("checkov.io/skip") and str(value).split("=", 1)[0] == check
        for key, value in annotations.items()
    )


def check_pod(where: str, doc: dict, spec: dict, report: Report) -> None:
    kind = doc["kind"]
    psc = spec.get("securityContext") or {}
    # Baseline: host namespaces, host paths and ports, sysctls.
    for field in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        value = spec.get(field)
        if (field == "hostUsers" and value is True) or (field != "hostUsers" and value):
            report.fail(where, f"{field} is set")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            report.fail(where, f"volume {volume.get('name')} is of a type restricted forbids: {sorted(kinds)}")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            report.fail(where, f"unsafe sysctl {sysctl.get('name')}")
    # Ours: no token, no default account.
    if spec.get("automountServiceAccountToken") is not False:
        report.fail(where, "automountServiceAccountToken is not false")
    if spec.get("serviceAccountName", "default") == "default":
        report.fail(where, "runs as the default service account")

    containers = [
        (section, c)
        for section in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(section) or []
    ]
    if not containers:
        report.fail(where, "no containers")
    for section, container in containers:
        at = f"{where} {section[:-1]} {container.get('name')}"
        csc = container.get("securityContext") or {}

        def effective(field: str):
            return csc.get(field, psc.get(field))

        if csc.get("privileged"):
            report.fail(at, "privileged")
        if csc.get("allowPrivilegeEscalation") is not False:
            report.fail(at, "allowPrivilegeEscalation is not false")
        caps = csc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            report.fail(at, "capabilities do not drop ALL")
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            report.fail(at, f"adds capabilities {sorted(extra)}")
        if effective("runAsNonRoot") is not True:
            report.fail(at, "runAsNonRoot is not true")
        user = effective("runAsUser")
        if not isinstance(user, int) or isinstance(user, bool) or user <= 0:
            report.fail(at, f"runAsUser is not a numeric non-root user: {user!r}")
        seccomp = (effective("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            report.fail(at, f"seccompProfile is {seccomp!r}, not RuntimeDefault")
        if csc.get("procMount", "Default") != "Default":
            report.fail(at, "procMount is not Default")
        selinux = (effective("seLinuxOptions") or {})
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            report.fail(at, "custom SELinux options")
        apparmor = (effective("appArmorProfile") or {}).get("type", "RuntimeDefault")
        if apparmor not in ("RuntimeDefault", "Localhost"):
            report.fail(at, f"appArmorProfile is {apparmor}")
        if csc.get("readOnlyRootFilesystem") is not True:
            report.fail(at, "readOnlyRootFilesystem is not true")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                report.fail(at, f"hostPort {port['hostPort']}")
        resources = container.get("resources") or {}
        for need in ("requests.cpu", "requests.memory", "limits.memory"):
            group, name = need.split(".")
            if name not in (resources.get(group) or {}):
                report.fail(at, f"no {need}")
        if section == "containers" and kind in LONG_RUNNING:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe not in container:
                    report.fail(at, f"no {probe}")
        image = container.get("image", "")
        if not DIGEST.search(image) and not skipped(doc, "CKV_K8S_43"):
            report.fail(at, f"image {image!r} is not pinned by digest")
        for env in container.get("env") or []:
            name, source = env.get("name"), env.get("valueFrom") or {}
            if name in SECRET_SETTINGS and "secretKeyRef" not in source:
                report.fail(at, f"{name} does not come from a Secret (secretKeyRef)")
            if "value" in env and CREDENTIALS_IN_URL.search(str(env["value"])):
                report.fail(at, f"{name} carries credentials in its value")
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                report.fail(at, "envFrom a ConfigMap (settings with secrets belong in Secrets)")


def selects(selector: dict, labels: dict) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def check_overlay(path: Path, report: Report) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    name = path.stem
    by_kind: dict[str, list[dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
        if doc["kind"] not in ("Namespace",) and doc.get("metadata", {}).get("namespace") != "medsec":
            report.fail(f"{name} {doc['kind']}/{doc['metadata']['name']}", "not in namespace medsec")

    namespaces = by_kind.get("Namespace", [])
    if not any(
        (ns["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce") == "restricted"
        for ns in namespaces
    ):
        report.fail(name, "the namespace does not enforce the restricted Pod Security profile")

    for doc in docs:
        for key, value in (doc.get("metadata", {}).get("annotations") or {}).items():
            check = str(value).split("=", 1)[0]
            if key.startswith("checkov.io/skip") and check not in DOCUMENTED_SKIPS:
                report.fail(f"{name} {doc['kind']}/{doc['metadata']['name']}", f"undocumented checkov skip {check}")

    pods = []
    for doc in docs:
        spec = pod_spec(doc)
        if spec is not None:
            where = f"{name} {doc['kind']}/{doc['metadata']['name']}"
            check_pod(where, doc, spec, report)
            pods.append((where, doc))

    # Network policy: deny by default, open nothing to everyone.
    policies = by_kind.get("NetworkPolicy", [])
    if not any(
        p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress") and not p["spec"].get("egress")
        for p in policies
    ):
        report.fail(name, "no default-deny NetworkPolicy (ingress and egress) for the namespace")
    for p in policies:
        at = f"{name} NetworkPolicy/{p['metadata']['name']}"
        for direction, peers in (("ingress", "from"), ("egress", "to")):
            for rule in p["spec"].get(direction) or []:
                if not rule.get(peers):
                    report.fail(at, f"an {direction} rule open to every peer")
                if not rule.get("ports"):
                    report.fail(at, f"an {direction} rule open on every port")
    for where, doc in pods:
        labels = doc["spec"]["template"]["metadata"].get("labels") or {}
        if not any(selects(p["spec"].get("podSelector") or {}, labels) for p in policies):
            report.fail(where, "no NetworkPolicy selects its pods")

    # The services: an autoscaler, a disruption budget where there are two or
    # more replicas, a headless Service, migrations left to the Job.
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind.get("HorizontalPodAutoscaler", [])}
    pdbs = by_kind.get("PodDisruptionBudget", [])
    services = by_kind.get("Service", [])
    for deployment in by_kind.get("Deployment", []):
        dname = deployment["metadata"]["name"]
        at = f"{name} Deployment/{dname}"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        hpa = hpas.get(dname)
        if hpa is None:
            report.fail(at, "no HorizontalPodAutoscaler")
        elif "replicas" in deployment["spec"]:
            report.fail(at, "sets replicas although an autoscaler owns the count")
        if hpa and hpa["spec"].get("minReplicas", 1) >= 2 and not any(
            selects(p["spec"]["selector"], labels) for p in pdbs
        ):
            report.fail(at, "no PodDisruptionBudget")
        if not any(
            s["spec"].get("clusterIP") == "None" and selects({"matchLabels": s["spec"].get("selector") or {}}, labels)
            for s in services
        ):
            report.fail(at, "no headless Service")
        env = {e["name"]: e for c in deployment["spec"]["template"]["spec"]["containers"] for e in c.get("env") or []}
        if (env.get("MEDSEC__DATABASE__MIGRATE_ON_START") or {}).get("value") != "false":
            report.fail(at, "migrates on start (the medsec-migrate Job migrates)")
        if "MEDSEC__DATABASE__MIGRATION_URL" in env:
            report.fail(at, "sees the owner's migration URL")
    jobs = [j for j in by_kind.get("Job", []) if j["metadata"]["name"] == "medsec-migrate"]
    if not jobs:
        report.fail(name, "no medsec-migrate Job")
    for job in jobs:
        container = job["spec"]["template"]["spec"]["containers"][0]
        if container.get("args") != ["migrate"]:
            report.fail(f"{name} Job/medsec-migrate", "does not run `medsec migrate`")


def check_compose(path: Path, report: Report) -> None:
    compose = yaml.safe_load(path.read_text())
    names = {}
    for service, spec in (compose.get("services") or {}).items():
        at = f"{path.name} {service}"
        image = spec.get("image", "")
        if "build" not in spec and not DIGEST.search(image):
            report.fail(at, f"image {image!r} is not pinned by digest")
        for port in spec.get("ports") or []:
            text = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port.get('published')}"
            if not str(text).startswith("127.0.0.1:"):
                report.fail(at, f"port {text} is not bound to 127.0.0.1")
        env = spec.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        if "MEDSEC__TELEMETRY__SERVICE_NAME" in env:
            names.setdefault(env["MEDSEC__TELEMETRY__SERVICE_NAME"], []).append(service)
    for value, services in names.items():
        if len(services) > 1:
            report.fail(path.name, f"services {services} share service.name {value}")


def check_dockerfile(path: Path, report: Report) -> None:
    for line in path.read_text().splitlines():
        if line.strip().upper().startswith("FROM "):
            image = line.split()[1]
            if not re.search(r"@sha256:[0-9a-f]{64}$", image):
                report.fail(path.name, f"base image {image} is not pinned by digest")


# What the dashboard must show (docs/DEPLOY.md, "Compose").
DASHBOARD_METRICS = (
    "rpc_server_call_duration_seconds_count", "rpc_server_call_duration_seconds_bucket",
    "medsec_optimiser_duration_seconds_bucket", "medsec_events_outbox_lag_seconds",
    "medsec_events_outbox_pending", "medsec_records_specimens_overdue",
    "medsec_correspondence_letters_overdue",
)


def check_dashboards(folder: Path, datasources: Path, report: Report) -> None:
    """Every query parses as PromQL, names a provisioned data source, and
    together they cover the metrics the dashboard promises."""
    provisioned = {d["uid"] for f in datasources.glob("*.yaml") for d in yaml.safe_load(f.read_text())["datasources"]}
    exprs = []
    for path in sorted(folder.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard.get("panels", []):
            at = f"{path.name} panel {panel.get('title')!r}"
            for target in panel.get("targets", []):
                uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
                if uid not in provisioned:
                    report.fail(at, f"data source {uid!r} is not provisioned")
                expr = target.get("expr", "")
                exprs.append(expr)
                concrete = expr.replace("$__rate_interval", "1m").replace("$job", ".*")
                try:
                    promql_parser.parse(concrete)
                except ValueError as error:
                    report.fail(at, f"query does not parse: {error}: {expr}")
    for metric in DASHBOARD_METRICS:
        if not any(metric in expr for expr in exprs):
            report.fail(folder.name, f"no panel shows {metric}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k8s", nargs="*", default=[], type=Path)
    parser.add_argument("--compose", type=Path)
    parser.add_argument("--dockerfile", type=Path)
    parser.add_argument("--dashboards", type=Path, help="a folder of Grafana dashboards (JSON)")
    parser.add_argument("--datasources", type=Path, help="Grafana's provisioned data sources (folder)")
    args = parser.parse_args()
    report = Report()
    for path in args.k8s:
        check_overlay(path, report)
    if args.compose:
        check_compose(args.compose, report)
    if args.dockerfile:
        check_dockerfile(args.dockerfile, report)
    if args.dashboards:
        check_dashboards(args.dashboards, args.datasources, report)
    for problem in report.problems:
        print(f"FAIL {problem}", file=sys.stderr)
    checked = ", ".join(str(p) for p in [*args.k8s, args.compose, args.dockerfile, args.dashboards] if p)
    if report.problems:
        print(f"{len(report.problems)} problem(s) in {checked}", file=sys.stderr)
        return 1
    print(f"policy: ok ({checked})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
