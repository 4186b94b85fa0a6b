"""The Kubernetes manifests (deploy/k8s/): every overlay renders with `kubectl kustomize`, validates against the
Kubernetes API schemas (kubernetes-validate) and the operators' CRD schemas (deploy/k8s/schemas/), and says what an
operator relies on: the app runs as uid 1000 locked down with a read-only root that still has every directory the
app writes, probes on /healthz:7860, requests and limits, sticky websocket sessions at the Ingress, an HPA on CPU and
on the active-runs gauge the app serves, secrets from an existing Secret (dev, staging) or Vault (prod) and never
in the manifests, a NetworkPolicy, the evaluation Job and the sweep RayJob, images from the overlay, and only
variable names the app reads.

Needs kubectl (any with `kubectl kustomize`: Debian bookworm's `kubernetes-client`, kubectl 1.20 with kustomize
v2.0.3, or a current one with kustomize v5; ROUNDTABLE_KUBECTL=/path/to/kubectl picks one) and kubernetes-validate.
Without them the tests skip; with ROUNDTABLE_REQUIRE_SYSTEM=1 (CI) they fail.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import REPO_ROOT, Settings
from observability import metrics
from tests.conftest import skip_or_fail

K8S = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "staging", "prod")
# The Kubernetes versions whose API schemas the rendered objects must pass: the oldest and the newest that
# kubernetes-validate 1.37.0 ships offline schemas for (it covers 1.25 to 1.37).
K8S_VERSIONS = ("1.25", "1.37")
CRD_SCHEMAS = {
    ("ray.io/v1", "RayJob"): K8S / "schemas" / "rayjob-ray.io-v1.json",
    ("external-secrets.io/v1", "ExternalSecret"): K8S / "schemas" / "externalsecret-external-secrets.io-v1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): K8S / "schemas" / "servicemonitor-monitoring.coreos.com-v1.json",
}
SWEEP_ENTRYPOINT = ("python submit.py sweep --team teams/debate.yaml --team teams/vote.yaml --attempts 3 "
                    "--ray auto --sweep-dir /data/sweeps/nightly")
APP_PORT = 7860
INSTALL_KUBECTL = ("kubectl: `apt-get install kubernetes-client` (Debian bookworm's kubectl 1.20 with kustomize "
                   "v2.0.3; it cannot be installed beside Google's `kubectl` package, which owns /usr/bin/kubectl "
                   "too) or any kubectl >= 1.20; ROUNDTABLE_KUBECTL=/path/to/kubectl to pick one")


# --- rendering -----------------------------------------------------------------------------------------------
def _kubectl() -> str:
    chosen = os.environ.get("ROUNDTABLE_KUBECTL") or shutil.which("kubectl")
    if not chosen or not Path(chosen).exists():
        skip_or_fail(f"no kubectl to render deploy/k8s with: install {INSTALL_KUBECTL}")
    return str(chosen)


def render(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"`kubectl kustomize {directory.relative_to(REPO_ROOT)}` failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    kubectl = _kubectl()
    return {env: render(kubectl, K8S / "overlays" / env) for env in OVERLAYS}


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_templates(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod template in an object (a Deployment's, a Job's, a RayJob's head, workers and submitter)."""
    def walk(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, dict):
            spec = node.get("spec")
            if isinstance(spec, dict) and isinstance(spec.get("containers"), list):
                yield path, node
                return
            for key, value in node.items():
                yield from walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}/{i}")

    yield from walk(doc.get("spec"), f"{doc['kind']}/{doc['metadata']['name']}")


def containers(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, template in pod_templates(doc):
        for c in template["spec"].get("initContainers", []) + template["spec"]["containers"]:
            yield f"{path}/{c['name']}", c


def overlay_kustomization(env: str) -> dict[str, Any]:
    with open(K8S / "overlays" / env / "kustomization.yaml", encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


# --- validation ----------------------------------------------------------------------------------------------
def _validators() -> tuple[Any, Any]:
    try:
        import jsonschema
        import kubernetes_validate
    except ImportError:
        skip_or_fail("kubernetes-validate is not installed: pip install kubernetes-validate==1.37.0")
    return kubernetes_validate, jsonschema


@pytest.mark.parametrize("env", OVERLAYS)
def test_every_overlay_renders_and_passes_the_api_and_crd_schemas(rendered: dict[str, list[dict[str, Any]]],
                                                                  env: str) -> None:
    kv, jsonschema = _validators()
    docs = rendered[env]
    assert {d["kind"] for d in docs} >= {"Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service",
                                         "Ingress", "HorizontalPodAutoscaler", "NetworkPolicy", "Job", "RayJob"}
    problems: list[str] = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["kind"] == "Namespace" or doc["metadata"].get("namespace") == f"roundtable-{env}", name
        key = (doc["apiVersion"], doc["kind"])
        if key in CRD_SCHEMAS:
            schema = json.loads(CRD_SCHEMAS[key].read_text(encoding="utf-8"))
            problems += [f"{name}: {'/'.join(map(str, e.path))}: {e.message}"
                         for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
            # the CRD schemas leave embedded pod templates open: validate each as the core PodTemplateSpec it is
            checked = [(path, {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": t})
                       for path, t in pod_templates(doc)]
        else:
            checked = [(name, doc)]
        for where, obj in checked:
            for version in K8S_VERSIONS:
                try:
                    kv.validate(obj, version, strict=True)
                except kv.ValidationError as exc:
                    problems.append(f"{where} (Kubernetes {version}): {'/'.join(map(str, exc.caught.path))}: "
                                    f"{exc.caught.message}")
                except kv.SchemaNotFoundError:
                    problems.append(f"{where}: neither Kubernetes {version} nor deploy/k8s/schemas has its schema")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", OVERLAYS)
def test_what_the_pods_refer_to_is_in_the_overlay(rendered: dict[str, list[dict[str, Any]]], env: str) -> None:
    """ConfigMaps (their generated, hashed names: the RayJob's too), claims and service accounts exist."""
    names = {(d["kind"], d["metadata"]["name"]) for d in rendered[env]}
    for doc in rendered[env]:
        for path, template in pod_templates(doc):
            spec = template["spec"]
            if "serviceAccountName" in spec:
                assert ("ServiceAccount", spec["serviceAccountName"]) in names, path
            for volume in spec.get("volumes", []):
                if "persistentVolumeClaim" in volume:
                    assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in names, path
            for c in spec["containers"]:
                for source in c.get("envFrom", []):
                    if "configMapRef" in source:
                        assert ("ConfigMap", source["configMapRef"]["name"]) in names, (path, source)


def test_the_crd_schemas_refuse_a_misspelt_field() -> None:
    """The CRD schemas are strict: a typo in a RayJob or an ExternalSecret fails instead of being dropped."""
    _, jsonschema = _validators()
    ray = json.loads(CRD_SCHEMAS[("ray.io/v1", "RayJob")].read_text(encoding="utf-8"))
    bad = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "x"},
           "spec": {"entrypoint": "true", "shutdownAfterJobFinish": True}}
    assert any("shutdownAfterJobFinish" in e.message for e in jsonschema.Draft7Validator(ray).iter_errors(bad))
    eso = json.loads(CRD_SCHEMAS[("external-secrets.io/v1", "ExternalSecret")].read_text(encoding="utf-8"))
    bad = {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "x"},
           "spec": {"data": [{"secretKeyy": "A", "remoteRef": {"key": "k"}}]}}
    assert list(jsonschema.Draft7Validator(eso).iter_errors(bad))


# --- the web app ---------------------------------------------------------------------------------------------
def _dockerfile_env() -> dict[str, str]:
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    found = dict(re.findall(r"\b([A-Z][A-Z0-9_]+)=(\S+?)\s*\\?$", text, re.M))
    found["WORKDIR"] = re.findall(r"^WORKDIR\s+(\S+)", text, re.M)[-1]
    return found


@pytest.mark.parametrize("env", OVERLAYS)
def test_every_pod_runs_as_uid_1000_non_root_without_privileges(rendered: dict[str, list[dict[str, Any]]],
                                                                env: str) -> None:
    pods = [(p, t) for doc in rendered[env] for p, t in pod_templates(doc)]
    assert len(pods) >= 5  # the app, the evaluation Job, the Ray head, its workers and the job submitter
    for path, template in pods:
        spec = template["spec"]
        sc = spec["securityContext"]
        assert sc["runAsUser"] == 1000 and sc["runAsNonRoot"] is True, path
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", path
        assert spec.get("automountServiceAccountToken") is False, path
        for c in spec["containers"]:
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False and csc["capabilities"]["drop"] == ["ALL"], (path, c["name"])
            assert not csc.get("privileged"), (path, c["name"])


@pytest.mark.parametrize("env", OVERLAYS)
def test_the_read_only_app_still_has_every_directory_it_writes(rendered: dict[str, list[dict[str, Any]]],
                                                              env: str) -> None:
    """Chainlit's uploads (<app root>/.files), its translations (.chainlit/translations), the cache dir and /tmp."""
    deployment = one(rendered[env], "Deployment", "roundtable")
    (app,) = deployment["spec"]["template"]["spec"]["containers"]
    assert app["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in app["volumeMounts"]}
    image = _dockerfile_env()
    root, cache = image["WORKDIR"], image["ROUNDTABLE_CACHE_DIR"]
    for needed in (f"{root}/.files", f"{root}/.chainlit/translations", cache, "/tmp"):
        covering = [p for p in mounts if needed == p or needed.startswith(p.rstrip("/") + "/")]
        assert covering, f"{needed} is not writable in the read-only container (mounts: {sorted(mounts)})"
        assert not mounts[covering[0]].get("configMap") and not mounts[covering[0]].get("secret"), needed
    # the image's own .chainlit/config.toml must stay visible: no volume over .chainlit itself or the app root
    assert f"{root}/.chainlit" not in mounts and root not in mounts


@pytest.mark.parametrize("env", OVERLAYS)
def test_probes_ask_healthz_on_the_app_port(rendered: dict[str, list[dict[str, Any]]], env: str) -> None:
    deployment = one(rendered[env], "Deployment", "roundtable")
    (app,) = deployment["spec"]["template"]["spec"]["containers"]
    assert [p["containerPort"] for p in app["ports"]] == [APP_PORT]
    assert "--port" not in (app.get("args") or []) and "command" not in app  # the image's CMD: --port 7860
    assert f'"--port", "{APP_PORT}"' in (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert app[probe]["httpGet"] == {"path": "/healthz", "port": APP_PORT}, probe
    from ui.health import install  # the route the probes ask for is the one the app installs

    assert '"/healthz", healthz' in Path(install.__code__.co_filename).read_text(encoding="utf-8")


@pytest.mark.parametrize("env", OVERLAYS)
def test_every_container_has_requests_and_limits(rendered: dict[str, list[dict[str, Any]]], env: str) -> None:
    for doc in rendered[env]:
        for path, c in containers(doc):
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(kind, {})), f"{path}: no {kind}"


def _quantity(text: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def test_dev_is_small_and_prod_is_strict(rendered: dict[str, list[dict[str, Any]]]) -> None:
    def app(env: str) -> dict[str, Any]:
        (c,) = one(rendered[env], "Deployment", "roundtable")["spec"]["template"]["spec"]["containers"]
        return dict(c["resources"])

    dev, prod = app("dev"), app("prod")
    assert _quantity(dev["limits"]["memory"]) < _quantity(prod["limits"]["memory"])
    assert _quantity(dev["requests"]["cpu"]) < _quantity(prod["requests"]["cpu"])
    assert prod["requests"]["memory"] == prod["limits"]["memory"]  # no memory overcommit in prod
    assert one(rendered["dev"], "Deployment")["spec"]["replicas"] == 1
    assert one(rendered["staging"], "Deployment")["spec"]["replicas"] == 2
    assert one(rendered["prod"], "PodDisruptionBudget")["spec"]["minAvailable"] == 1


# --- ingress, service, autoscaling ---------------------------------------------------------------------------
@pytest.mark.parametrize("env", OVERLAYS)
def test_the_ingress_pins_a_browser_to_its_pod_and_keeps_websockets_open(rendered: dict[str, list[dict[str, Any]]],
                                                                        env: str) -> None:
    ingress = one(rendered[env], "Ingress", "roundtable")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["nginx.ingress.kubernetes.io/session-cookie-name"]
    assert int(notes["nginx.ingress.kubernetes.io/session-cookie-max-age"]) >= 3600
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(notes["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert ingress["spec"]["ingressClassName"] == "nginx"
    # the Ingress reaches the app's port through the Service
    (rule,) = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = one(rendered[env], "Service", backend["name"])
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"]]
    (app,) = one(rendered[env], "Deployment")["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in app["ports"]}[port["targetPort"]] == APP_PORT
    pod_labels = one(rendered[env], "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert rule["host"] == ingress["spec"]["tls"][0]["hosts"][0]


def test_each_environment_has_its_own_host(rendered: dict[str, list[dict[str, Any]]]) -> None:
    hosts = {env: one(rendered[env], "Ingress")["spec"]["rules"][0]["host"] for env in OVERLAYS}
    assert len(set(hosts.values())) == len(OVERLAYS), hosts
    config = one(rendered["prod"], "ConfigMap")["data"]
    assert config["CHAINLIT_URL"] == f"https://{hosts['prod']}"  # the OAuth redirect comes back to prod's host


@pytest.mark.parametrize("env", OVERLAYS)
def test_the_hpa_scales_the_app_on_cpu_and_on_the_active_runs_gauge(rendered: dict[str, list[dict[str, Any]]],
                                                                   env: str) -> None:
    hpa = one(rendered[env], "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": one(rendered[env], "Deployment")["metadata"]["name"]}
    by_type = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    pods_metric = by_type["Pods"]["pods"]["metric"]["name"]
    exposition = metrics.render()[0].decode()
    assert f"# TYPE {pods_metric} gauge" in exposition, f"the app serves no gauge named {pods_metric}"
    assert [m.name for m in metrics.current().active_runs.describe()] == [pods_metric]
    bounds = (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
    assert bounds == {"dev": (1, 2), "staging": (2, 4), "prod": (2, 10)}[env]
    assert "prometheus-adapter" in (K8S / "base" / "hpa.yaml").read_text(encoding="utf-8")


# --- secrets -------------------------------------------------------------------------------------------------
def secret_refs(docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    refs: dict[str, set[str]] = {}
    for doc in docs:
        for path, c in containers(doc):
            names = {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
            names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", [])
                      if "secretKeyRef" in e.get("valueFrom", {})}
            refs[path] = names
    return refs


@pytest.mark.parametrize("env", ("dev", "staging"))
def test_dev_and_staging_read_an_existing_secret_named_by_the_overlay(rendered: dict[str, list[dict[str, Any]]],
                                                                      env: str) -> None:
    docs = rendered[env]
    assert not [d for d in docs if d["kind"] in ("Secret", "ExternalSecret")]
    refs = secret_refs(docs)
    expected = f"roundtable-{env}-secrets"
    users = [p for p in refs if not p.endswith("ray-job-submitter")]
    assert users and all(refs[p] == {expected} for p in users), refs
    assert expected in (K8S / "overlays" / env / "kustomization.yaml").read_text(encoding="utf-8") or \
        expected in (K8S / "overlays" / env / "patches" / "secret-ref-deployment.yaml").read_text(encoding="utf-8")


def test_prod_takes_its_secret_from_vault_through_an_external_secret(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["prod"]
    external = one(docs, "ExternalSecret")
    assert external["apiVersion"] == "external-secrets.io/v1"  # ESO >= 0.17 serves no v1beta1
    target = external["spec"]["target"]["name"]
    refs = secret_refs(docs)
    pods_with_env = [p for p in refs if not p.endswith("ray-job-submitter")]
    assert pods_with_env and all(refs[p] == {target} for p in pods_with_env), refs
    keys = {d["secretKey"] for d in external["spec"]["data"]}
    # a login made on one pod must hold on the next; Prometheus scrapes with the token; the history's database
    assert {"CHAINLIT_AUTH_SECRET", "ROUNDTABLE_METRICS_TOKEN", "DATABASE_URL"} <= keys
    assert not [d for d in docs if d["kind"] == "Secret"]


def _secret_names() -> set[str]:
    names = {"CHAINLIT_AUTH_SECRET", "OAUTH_CLIENT_SECRET"}
    for field in Settings.model_fields.values():
        if "SecretStr" in str(field.annotation):
            names |= {c for c in getattr(field.validation_alias, "choices", []) if isinstance(c, str)}
    return names


KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_-]{12,}|sk-ant-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_-]{20,}"
                        r"|Bearer\s+[A-Za-z0-9._~+/-]{12,}|postgres(?:ql)?://[^:\s]+:[^@\s]+@)")


@pytest.mark.parametrize("env", OVERLAYS)
def test_no_secret_value_is_in_the_manifests(rendered: dict[str, list[dict[str, Any]]], env: str) -> None:
    secret_names = _secret_names()
    for doc in rendered[env]:
        assert doc["kind"] != "Secret", "a Secret with its values in the manifests"
        if doc["kind"] == "ConfigMap":
            assert not set(doc["data"]) & secret_names, f"secrets in the ConfigMap: {set(doc['data']) & secret_names}"
        for path, c in containers(doc):
            literal = {e["name"] for e in c.get("env", []) if "value" in e}
            assert not literal & secret_names, f"{path}: {literal & secret_names} given as a literal value"
    text = yaml.safe_dump_all(rendered[env])
    assert not KEY_SHAPES.findall(text)
    for source in K8S.rglob("*.yaml"):
        assert not KEY_SHAPES.findall(source.read_text(encoding="utf-8")), source


def _names_the_app_reads() -> set[str]:
    """Variable names in config/settings.py (aliases) and those the app's code reads from os.environ itself."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        names |= {c for c in getattr(field.validation_alias, "choices", []) if isinstance(c, str)}
    read = re.compile(r"""(?:os\.environ(?:\.get|\.setdefault)?\(|os\.environ\[|os\.getenv\()\s*["']([A-Z][A-Z0-9_]+)["']""")
    for path in REPO_ROOT.rglob("*.py"):
        if {".venv", "tests", "node_modules"} & set(path.relative_to(REPO_ROOT).parts):
            continue
        names |= set(read.findall(path.read_text(encoding="utf-8", errors="replace")))
    return names


@pytest.mark.parametrize("env", OVERLAYS)
def test_every_variable_the_manifests_set_is_one_the_app_reads(rendered: dict[str, list[dict[str, Any]]],
                                                              env: str) -> None:
    known = _names_the_app_reads()
    assert {"OPENAI_API_KEY", "HF_TOKEN", "DATABASE_URL", "CHAINLIT_AUTH_SECRET", "CHAINLIT_URL"} <= known
    used: dict[str, str] = {}
    for doc in rendered[env]:
        if doc["kind"] == "ConfigMap":
            used |= {k: f"ConfigMap/{doc['metadata']['name']}" for k in doc["data"]}
        if doc["kind"] == "ExternalSecret":
            used |= {d["secretKey"]: "ExternalSecret" for d in doc["spec"]["data"]}
        for path, c in containers(doc):
            used |= {e["name"]: path for e in c.get("env", [])}
    assert used
    unknown = {name: where for name, where in used.items() if name not in known}
    assert not unknown, f"variables the app never reads (a typo?): {unknown}"


# --- network -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", OVERLAYS)
def test_the_network_policy_admits_the_ingress_and_prometheus_and_lets_out_dns_and_https(
        rendered: dict[str, list[dict[str, Any]]], env: str) -> None:
    policy = one(rendered[env], "NetworkPolicy")
    pod_labels = one(rendered[env], "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}  # all else is denied
    sources = [(peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name"),
                [p["port"] for p in rule["ports"]])
               for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert ("ingress-nginx", [APP_PORT]) in sources and ("monitoring", [APP_PORT]) in sources
    assert all(ns for ns, _ in sources), "an ingress rule open to every namespace"
    out_ports = {(p.get("protocol", "TCP"), p["port"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {("UDP", 53), ("TCP", 53), ("TCP", 443)} <= out_ports
    assert all(rule.get("ports") for rule in policy["spec"]["egress"]), "an egress rule open on every port"
    if env == "prod":
        assert ("TCP", 5432) in out_ports  # its history lives in PostgreSQL


def test_the_optional_service_monitor_scrapes_prod_with_the_metrics_token(
        rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Kept apart from the overlay (its CRD may be missing): deploy/k8s/overlays/prod/monitoring."""
    _, jsonschema = _validators()
    (monitor,) = render(_kubectl(), K8S / "overlays" / "prod" / "monitoring")
    schema = json.loads(CRD_SCHEMAS[("monitoring.coreos.com/v1", "ServiceMonitor")].read_text(encoding="utf-8"))
    assert not [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(monitor)]
    assert not [d for d in rendered["prod"] if d["kind"] == "ServiceMonitor"]
    service = one(rendered["prod"], "Service")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    credentials = endpoint["authorization"]["credentials"]
    assert credentials == {"name": one(rendered["prod"], "ExternalSecret")["spec"]["target"]["name"],
                           "key": "ROUNDTABLE_METRICS_TOKEN"}


# --- the evaluation and the sweep ----------------------------------------------------------------------------
@pytest.mark.parametrize("env", OVERLAYS)
def test_the_evaluation_job_runs_submit_py_into_a_persistent_run_dir(rendered: dict[str, list[dict[str, Any]]],
                                                                     env: str) -> None:
    job = one(rendered[env], "Job", "roundtable-eval")
    assert job["spec"]["suspend"] is True  # applying an overlay spends no model key by itself
    spec = job["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    args = c["args"]
    assert args[:3] == ["python", "submit.py", "run"]
    from submit import build_parser

    parsed = build_parser().parse_args(args[2:])  # the CLI accepts these arguments
    assert (REPO_ROOT / parsed.team).is_file()
    volumes = {v["name"]: v for v in spec["volumes"]}
    mount = [m for m in c["volumeMounts"] if str(parsed.run_dir).startswith(m["mountPath"] + "/")]
    assert mount and "persistentVolumeClaim" in volumes[mount[0]["name"]], "the run dir is lost with the pod"
    claim = volumes[mount[0]["name"]]["persistentVolumeClaim"]["claimName"]
    one(rendered[env], "PersistentVolumeClaim", claim)


@pytest.mark.parametrize("env", OVERLAYS)
def test_the_ray_job_sweeps_on_workers_that_have_the_model_keys(rendered: dict[str, list[dict[str, Any]]],
                                                                env: str) -> None:
    ray = one(rendered[env], "RayJob", "roundtable-sweep")
    spec = ray["spec"]
    assert spec["entrypoint"] == SWEEP_ENTRYPOINT
    assert spec["entrypoint"].startswith("python submit.py sweep ")
    for team in re.findall(r"--team (\S+)", spec["entrypoint"]):
        assert (REPO_ROOT / team).is_file(), team
    from submit import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert "sweep" in commands  # the CLI accepts the entrypoint as written (`--ray auto`: the cluster it runs on)
    parsed = parser.parse_args(shlex.split(spec["entrypoint"])[2:])
    assert parsed.command == "sweep" and parsed.ray == "auto" and parsed.attempts == 3
    # the cluster KubeRay starts runs the Ray the image's `ray` extra installs
    import tomllib

    extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ray"]
    assert any(d.split("==")[-1] == spec["rayClusterSpec"]["rayVersion"] for d in extra if d.startswith("ray")), extra
    assert spec["suspend"] is True and spec["shutdownAfterJobFinishes"] is True
    head = spec["rayClusterSpec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    (head_c,) = head["template"]["spec"]["containers"]
    assert head_c["workingDir"] == _dockerfile_env()["WORKDIR"]  # where submit.py and teams/ are
    sweep_mounts = [m["mountPath"] for m in head_c["volumeMounts"]]
    assert any("/data/sweeps/nightly".startswith(p + "/") for p in sweep_mounts)
    app_secret = secret_refs([one(rendered[env], "Deployment")])
    (app_secrets,) = app_secret.values()
    for group in spec["rayClusterSpec"]["workerGroupSpecs"]:
        (worker,) = group["template"]["spec"]["containers"]
        assert {e["secretRef"]["name"] for e in worker["envFrom"] if "secretRef" in e} == app_secrets
    text = (K8S / "base" / "sweep-rayjob.yaml").read_text(encoding="utf-8")
    assert "--build-arg EXTRAS=ray" in text


# --- images --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", OVERLAYS)
def test_every_image_and_tag_comes_from_the_overlay(rendered: dict[str, list[dict[str, Any]]], env: str) -> None:
    images = {i["name"]: f"{i['newName']}:{i['newTag']}" for i in overlay_kustomization(env)["images"]}
    assert set(images) == {"roundtable", "roundtable-ray"}
    used: dict[str, str] = {}
    for doc in rendered[env]:
        for path, c in containers(doc):
            used[path] = c["image"]
    assert used and set(used.values()) <= set(images.values()), used
    assert one(rendered[env], "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == images["roundtable"]
    ray = one(rendered[env], "RayJob")
    ray_images = {c["image"] for _, c in containers(ray)}
    assert ray_images == {images["roundtable-ray"]}  # the image built with --build-arg EXTRAS=ray
    tags = {env: {i["newTag"] for i in overlay_kustomization(env)["images"]} for env in OVERLAYS}
    assert tags["dev"] != tags["prod"]
