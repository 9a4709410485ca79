"""``llm.enabled``: the chart's vLLM OpenAI-compatible server for the agents and the judge.

What helm renders (no GPU, no cluster here; lint, kubernetes-validate --strict and the
hardening checks run on ci/llm-values.yaml with every other CI file): a Deployment and a
Service, the GPU request, model and arguments from values, the HF token and the API key from
Secrets, probes on ``/health``; the NetworkPolicy admits the operator's job pods (any
namespace) on the server's port; the examples talk to it by default.
"""

from __future__ import annotations

from pathlib import Path

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "crs"


def _server(rendered, chart) -> tuple[dict, dict]:
    dep = rendered.named("Deployment", chart.name("llm"))
    return dep, dep["spec"]["template"]["spec"]["containers"][0]


def test_off_by_default(chart) -> None:
    assert not [d for d in chart.render().docs if d["metadata"]["name"] == chart.name("llm")]


def test_server_deployment_and_service(chart) -> None:
    r = chart.render(chart.ci("llm"))
    values = yaml.safe_load(chart.ci("llm").read_text())["llm"]
    dep, c = _server(r, chart)
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert c["command"] == ["vllm", "serve"]
    assert c["args"][:2] == [values["model"], f"--served-model-name={values['servedModelName']}"]
    assert {"--port=8000", "--tensor-parallel-size=2", "--max-model-len=8192"} <= set(c["args"])
    for where in ("requests", "limits"):
        assert c["resources"][where]["nvidia.com/gpu"] == "2"
    env = {e["name"]: e for e in c["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "llm-api-key",
                                                                "key": "api-key"}
    assert env["HF_HOME"]["value"].startswith("/cache/")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["cache"]["persistentVolumeClaim"] == {"claimName": "model-cache"}
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
    svc = r.named("Service", chart.name("llm"))
    assert svc["spec"]["ports"][0]["port"] == 8000 and svc["spec"]["ports"][0][
        "targetPort"] == "http"
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"][
        "labels"].items()


def test_one_gpu_without_secrets(chart) -> None:
    """Defaults: one GPU (no tensor parallelism), no HF token; an empty apiKeySecret name
    serves without a key; the GPU resource name follows jobs.scheduling."""
    r = chart.render(None, "llm.enabled=true", "llm.apiKeySecret.name=",
                     "jobs.scheduling.gpuResourceName=amd.com/gpu")
    _, c = _server(r, chart)
    assert not any(a.startswith("--tensor-parallel-size") for a in c["args"])
    assert {e["name"] for e in c["env"]}.isdisjoint({"HF_TOKEN", "VLLM_API_KEY"})
    assert c["resources"]["limits"]["amd.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in c["resources"]["limits"]


def _admits(policy: dict, pod_labels: dict[str, str], port: int) -> bool:
    """Whether the policy's ingress rules let a pod with these labels (in another
    namespace) reach ``port``. Only the selector forms the chart renders are handled."""
    for rule in policy["spec"].get("ingress") or []:
        ports = {p["port"] for p in rule.get("ports", [])}
        for peer in rule.get("from", []):
            if peer.get("namespaceSelector") != {}:
                continue
            want = (peer.get("podSelector") or {}).get("matchLabels") or {}
            if want.items() <= pod_labels.items() and port in ports:
                return True
    return False


def test_network_policy_admits_job_pods_on_the_llm_port(chart) -> None:
    from zhufu.operator import builders
    from zhufu.operator.settings import OperatorSettings
    from zhufu.operator.spec import KINDS

    r = chart.render(chart.ci("llm"))  # allowedClientLabels: the operator's job pods only
    (policy,) = r.of_kind("NetworkPolicy")
    dep, _ = _server(r, chart)
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    for kind in ("CurationJob", "JudgeTraining"):
        job = builders.job(KINDS[kind], "demo", "team-a", {}, {},
                           OperatorSettings.model_construct())
        pod_labels = job["spec"]["template"]["metadata"]["labels"]
        assert _admits(policy, pod_labels, 8000), kind
    assert not _admits(policy, {"app": "somebody-else"}, 8000)
    assert not _admits(policy, pod_labels, 22)


def test_examples_use_the_chart_server(chart) -> None:
    """The example resources' LLM settings are the chart's defaults for release "zhufu" in
    namespace "zhufu" (the install the README and docs/kind.md describe)."""
    out = chart.helm("template", "zhufu", str(chart.dir), "-n", "zhufu", "--set",
                     "llm.enabled=true").stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"]
               == "zhufu-llm")
    url = f"http://{svc['metadata']['name']}.zhufu.svc:{svc['spec']['ports'][0]['port']}/v1"
    values = yaml.safe_load((chart.dir / "values.yaml").read_text())["llm"]
    seen = 0
    for path in sorted(EXAMPLES.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())["spec"]
        if spec.get("llm", {}).get("backend") != "openai":
            continue
        seen += 1
        assert spec["llm"]["baseUrl"] == url, path.name
        assert spec["llm"]["model"] == values["servedModelName"], path.name
        assert spec["llmApiKeySecret"]["name"] == values["apiKeySecret"]["name"], path.name
        assert spec["llmApiKeySecret"].get("key", "api-key") == values["apiKeySecret"]["key"]
    assert seen == 2  # the CurationJob and the JudgeTraining
