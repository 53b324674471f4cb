"""The deployment parts, checked without a cluster or a container engine: the Helm chart
linted and rendered by helm, every rendered object validated against the Kubernetes API's own
schemas (or its operator's, for a custom resource) with unknown fields refused; the compose file
against the Compose specification; the examples, the image's recipe and what it installs.

``make tools`` builds helm and fetches the operators' schemas into ``.tools``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from devstack.stack import ROOT, SERVICES
from leadrelay_shared.contracts import Topics

CHART = ROOT / "deploy" / "helm" / "leadrelay"
PRODUCTION = ROOT / "deploy" / "helm" / "values-production.yaml"
EXAMPLES = ROOT / "deploy" / "helm" / "examples"
TOOLS = ROOT / ".tools"
KUBERNETES = "1.37.0"
CONSUMERS = {"scoring", "router", "sla-monitor", "analytics"}
SECRET = "whsec_ZGV2LW9ubHktc2VjcmV0LWZvci10aGUtZGVtby1jcm0="


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    binary = TOOLS / "bin" / "helm"
    if not binary.exists():
        pytest.fail("helm is missing: run `make tools`")
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=120, check=False
    )


def rendered(*values: Path, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    args = ["template", "leadrelay", str(CHART)]
    for path in values:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    done = helm(*args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The operator's own schema of a custom resource, with unknown fields refused."""
    files = {
        "ScaledObject": "keda.sh_scaledobjects.yaml",
        "Cluster": "postgresql.cnpg.io_clusters.yaml",
    }
    path = TOOLS / "crds" / files[kind]
    if not path.exists():
        pytest.fail(f"{path.name} is missing: run `make tools`")
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema: dict[str, Any] = strict(version["schema"]["openAPIV3Schema"])
    return schema


def strict(schema: Any) -> Any:
    """An OpenAPI schema of a custom resource that also refuses properties it does not name,
    as the API server's strict field validation does."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def validate(doc: dict[str, Any]) -> None:
    """``doc`` against its kind's schema; raises on an unknown field or a missing schema."""
    if doc["kind"] in ("ScaledObject", "Cluster"):
        jsonschema.validate(doc, crd_schema(doc["kind"]))
    else:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module", params=["default values", "production values"])
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return rendered(*([PRODUCTION] if request.param == "production values" else []))


def test_the_chart_passes_helm_lint_strict() -> None:
    for values in ([], ["-f", str(PRODUCTION)]):
        done = helm("lint", "--strict", str(CHART), *values)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_rendered_object_is_valid_for_its_api(objects: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in objects}
    assert {"Deployment", "Service", "PodDisruptionBudget", "Job", "ScaledObject"} <= kinds
    assert "HorizontalPodAutoscaler" in kinds
    for doc in objects:
        validate(doc)


def test_an_unknown_field_is_refused(objects: list[dict[str, Any]]) -> None:
    deployment = next(d for d in objects if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    scaled = next(d for d in objects if d["kind"] == "ScaledObject")
    scaled["spec"]["maxReplicas"] = 3
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)


def test_each_service_is_probed_and_runs_unprivileged(objects: list[dict[str, Any]]) -> None:
    deployments = of_kind(objects, "Deployment")
    assert set(deployments) == {f"leadrelay-{s.name}" for s in SERVICES}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["serve", name.removeprefix("leadrelay-")]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"]
        env = {e["name"]: e for e in container["env"]}
        assert env["LEADRELAY_MIGRATE_ON_START"]["value"] == "false"  # the job migrates
        assert "secretKeyRef" in env["DATABASE_URL"]["valueFrom"]
        assert all("value" not in e or "SECRET" not in e["name"] for e in container["env"])
    budgets = of_kind(objects, "PodDisruptionBudget")
    assert set(budgets) == set(deployments)


def test_consumers_scale_on_lag_within_their_partitions(objects: list[dict[str, Any]]) -> None:
    scaled = of_kind(objects, "ScaledObject")
    assert set(scaled) == {f"leadrelay-{name}" for name in CONSUMERS}
    most = max(Topics.PARTITIONS.values())
    for name, item in scaled.items():
        assert item["spec"]["scaleTargetRef"]["name"] == name
        assert item["spec"]["maxReplicaCount"] <= most
        (trigger,) = item["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == name
        assert int(trigger["metadata"]["lagThreshold"]) > 0
        deployment = of_kind(objects, "Deployment")[name]
        assert "replicas" not in deployment["spec"]  # KEDA sets them
    (hpa,) = of_kind(objects, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "leadrelay-intake"


def test_partitions_cap_the_replicas() -> None:
    docs = rendered(sets=("kafka.partitions=3", "services.scoring.lagScaling.maxReplicas=10"))
    assert of_kind(docs, "ScaledObject")["leadrelay-scoring"]["spec"]["maxReplicaCount"] == 3


def test_tracing_is_off_unless_a_collector_is_named(tmp_path: Path) -> None:
    def env_of(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
        out = {}
        for name, deployment in of_kind(docs, "Deployment").items():
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            out[name] = {e["name"]: e.get("value") for e in container["env"]}
        return out

    assert not any("OTEL_EXPORTER_OTLP_ENDPOINT" in env for env in env_of(rendered()).values())
    values = tmp_path / "tracing.yaml"
    values.write_text("tracing: {otlpEndpoint: 'http://otel-collector:4318', sampleRatio: 0.25}\n")
    traced = env_of(rendered(values))
    assert len(traced) == 6
    for name, env in traced.items():
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        assert env["OTEL_SERVICE_NAME"] == name  # as the services name themselves
        assert (env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"]) == (
            "parentbased_traceidratio",
            "0.25",
        )


def test_migrations_run_once_before_the_services(objects: list[dict[str, Any]]) -> None:
    (job,) = of_kind(objects, "Job").values()
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]


def test_production_values_keep_no_secret_in_the_release() -> None:
    docs = rendered(PRODUCTION)
    assert not of_kind(docs, "Secret")  # they come from the Secret the operator manages
    (config,) = of_kind(docs, "ConfigMap").values()
    text = yaml.safe_dump(config)
    assert "secret: {env: CRM_WEBHOOK_SECRET}" in config["data"]["routing.yaml"]
    assert "whsec_" not in text
    router = of_kind(docs, "Deployment")["leadrelay-router"]
    (container,) = router["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "leadrelay-secrets"}}]


def test_values_are_checked_against_the_chart_schema() -> None:
    for wrong in ("services.scoring.bogus=1", "kafka.partitions=0", "image.pullPolicy=Sometimes"):
        done = helm("template", "leadrelay", str(CHART), "--set", wrong)
        assert done.returncode != 0, wrong
        assert "values don't meet the specifications of the schema" in done.stderr


@pytest.fixture
def rules_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "CRM_WEBHOOK_SECRET",
        "OPS_WEBHOOK_SECRET",
        "SLACK_WEBHOOK_SECRET",
        "PAGERDUTY_WEBHOOK_SECRET",
    ):
        monkeypatch.setenv(name, SECRET)
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "an-integration-key")
    yield


def test_the_rules_files_shipped_for_deployments_load(rules_secrets: None) -> None:
    from router.config import parse as routing
    from sla_monitor.config import parse as policies

    values = yaml.safe_load(PRODUCTION.read_text())
    routing(values["config"]["routing"], "values-production.yaml")
    policies(values["config"]["sla"], "values-production.yaml")
    config = ROOT / "deploy" / "config"
    routing((config / "compose-routing.yaml").read_text(), "compose-routing.yaml")
    policies((config / "compose-sla.yaml").read_text(), "compose-sla.yaml")


def test_the_compose_file_meets_the_compose_specification() -> None:
    compose = ROOT / "deploy" / "compose.yaml"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(compose),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    services = yaml.safe_load(compose.read_text())["services"]
    for spec in SERVICES:
        assert services[spec.name]["command"] == ["serve", spec.name]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["receiver"]["profiles"] == ["demo"]
    created = services["topics"]["command"][0]
    for topic, partitions in Topics.PARTITIONS.items():
        assert f"{topic}:{partitions}" in created


def test_the_examples_match_the_operators_and_the_topics() -> None:
    (cluster,) = yaml.safe_load_all((EXAMPLES / "cloudnative-pg.yaml").read_text())
    validate(cluster)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["database"]["urlSecret"] == {
        "name": f"{cluster['metadata']['name']}-app",
        "key": "uri",
    }
    strimzi = list(yaml.safe_load_all((EXAMPLES / "strimzi.yaml").read_text()))
    topics = {
        d["metadata"]["name"]: d["spec"]["partitions"] for d in strimzi if d["kind"] == "KafkaTopic"
    }
    assert topics == Topics.PARTITIONS
    (kafka,) = (d for d in strimzi if d["kind"] == "Kafka")
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2


def test_the_image_is_built_in_stages_and_runs_unprivileged() -> None:
    recipe = (ROOT / "deploy" / "Dockerfile").read_text()
    stages = [line for line in recipe.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and all("-slim" in s for s in stages)
    final = recipe[recipe.rindex("\nFROM ") :]
    assert "pip install" not in final and "apt-get" not in final  # no build tools at run time
    assert "USER 10001" in final
    assert 'ENTRYPOINT ["leadrelay"]' in final
    assert "-c constraints.txt" in recipe  # the locked versions


def test_the_installed_package_carries_migrations_and_default_rules(tmp_path: Path) -> None:
    """What the image installs (``pip install .``): a wheel with every service's migrations,
    the shipped rules and the console's files."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert done.returncode == 0, done.stderr
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    (wheel,) = tmp_path.glob("leadrelay-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {name.split("/")[0] for name in names if not name.startswith("leadrelay-")}
    assert top == {s.module for s in SERVICES} | {"leadrelay_shared", "devstack"}
    for spec in SERVICES:
        assert f"{spec.module}/migrations/env.py" in names
    for shipped in (
        "scoring/default_model.yaml",
        "router/default_routing.yaml",
        "sla_monitor/default_sla.yaml",
        "console/templates/base.html",
        "console/static/console.css",
    ):
        assert shipped in names
