"""Makes the JSON schemas in this folder from the CRDs of the operators the manifests need (ray.io RayJob,
external-secrets.io ExternalSecret, monitoring.coreos.com ServiceMonitor): tests/deploy/test_k8s_manifests.py
validates the rendered custom resources against them offline, as kubernetes-validate does the built-in kinds.

    python deploy/k8s/schemas/prune_crd.py CRD.yaml VERSION > deploy/k8s/schemas/<kind>-<group>-<version>.json

From the CRD's openAPIV3Schema of VERSION it drops the descriptions, turns `x-kubernetes-int-or-string` into
an anyOf of integer and string, refuses unknown fields wherever the CRD lists properties (typos fail, as with
`kubectl apply --validate=strict`), and replaces every embedded pod template (`template`,
`submitterPodTemplate`) by an open object: the test validates those as core PodTemplateSpecs with
kubernetes-validate instead (this keeps the RayJob's schema at 30 kB instead of 1.4 MB).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

POD_TEMPLATE_KEYS = ("template", "submitterPodTemplate")


def _is_pod_template(schema: Any) -> bool:
    return isinstance(schema, dict) and "spec" in schema.get("properties", {}) and "metadata" in schema["properties"]


def prune(schema: Any) -> Any:
    if isinstance(schema, list):
        return [prune(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "description":
            continue
        if key == "properties":
            out[key] = {name: ({"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                               if name in POD_TEMPLATE_KEYS and _is_pod_template(sub) else prune(sub))
                        for name, sub in value.items()}
        else:
            out[key] = prune(value)
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def main(argv: list[str]) -> int:
    path, version = argv
    with open(path, encoding="utf-8") as f:
        crd = yaml.safe_load(f)
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = prune(entry["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta: the API server's, not the CRD's
    schema["properties"]["apiVersion"] = {"const": f"{crd['spec']['group']}/{version}"}
    schema["properties"]["kind"] = {"const": crd["spec"]["names"]["kind"]}
    schema.setdefault("required", [])
    for name in ("apiVersion", "kind", "metadata", "spec"):
        if name not in schema["required"]:
            schema["required"].append(name)
    json.dump(schema, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
