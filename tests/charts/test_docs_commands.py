"""Every shell command in README.md, docs/*.md and the chart's NOTES.txt works as written.

A page's fenced ``bash`` blocks run in order, command by command, against a fresh API
emulator (tests/operator/kube_emulator.py, Zhufu's CRDs installed), in a folder where the
repository's paths resolve and the page's ``# NAME.yaml`` blocks are written out:

- ``kubectl``: the real kubectl 1.37 against the emulator, with ``--validate=false`` added to
  ``apply`` (the emulator serves no OpenAPI). ``create <object>`` (namespace, secret,
  rolebinding) runs as ``--dry-run=client -o json`` and the emulator stores the result
  (kubectl sends typed objects as protobuf, which the emulator cannot read). ``-w`` must
  still be watching after 3 s. ``logs`` and ``port-forward`` must name something that
  exists (a Job of a resource counts: the operator would create it); no kubelet runs.
- ``helm install``: ``helm install --dry-run=client -o json`` with the same arguments; the
  manifests are stored in the emulator (Deployments marked rolled out). ``helm upgrade``:
  ``helm template`` with the same chart and values (an upgrade reads the release from a
  cluster). ``helm uninstall``: the release was installed earlier on the page.
- ``zhufu``: ``zhufu <command> --help`` succeeds; ``zhufu operator render`` (no cluster
  needed) runs as written and prints a Job.
- ``kubectl wait``: no operator runs, so the resources it waits on must exist.
- ``$(openssl rand -hex N)`` and ``<placeholders>`` become fixed values.

After a page, every Zhufu resource it created sits in a namespace that holds what its job
pods need: the job ServiceAccount and S3 Secret the installed operator names, and the Secret
of ``llmApiKeySecret``. NOTES.txt is rendered by ``helm install --dry-run=client`` for a few
installs and its commands run the same way. Commands that need Docker, kind, a GPU cluster
or the network are listed in SKIPPED with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "operator"))

from kube_emulator import KubeEmulator, Resource  # noqa: E402
from opharness import emulator, write_kubeconfig  # noqa: E402

BIN = Path(sys.executable).parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

#: argv prefix -> why the command cannot run here (checked as text only).
SKIPPED: dict[tuple[str, ...], str] = {
    ("make", "run"): "the whole CPU loop (~7 min): run by hand, not inside the test suite",
    ("make", "test"): "runs this very test suite",
    ("make", "images"): "needs a Docker engine (none on the development machines)",
    ("docker",): "needs a Docker engine",
    ("kind",): "needs Docker and kind",
    ("mc",): "MinIO's admin client: needs a running MinIO (none here)",
    ("python3", "-m", "venv"): "creates checkov's environment from PyPI (network)",
    (".venv/checkov/bin/pip",): "installs checkov from PyPI (network)",
    ("python", "-"): "needs the MLflow server of a running cluster (port-forward)",
    (".venv/bin/pytest",): "the test suite itself (its paths are checked to exist)",
    ("trl", "vllm-serve"): "GRPO's rollout server: needs a GPU and vLLM (neither is here)",
    ("aws",): "uploads to the cluster's S3 store (its endpoint and credentials)",
    ("mlflow", "models", "serve"): "serves a version from a running cluster's MLflow "
    "(port-forward); tests/pipeline/tracking/test_mlflow_models.py loads the same models",
    ("curl",): "asks the model server started above",
}
#: Commands after a pipe or a `;` that only format output.
FORMATTERS = {"tail", "head", "grep", "echo"}
PLACEHOLDERS = {"<name>": "greetings-grpo", "<your-key>": "example-key",
                "<team-a-password>": "example-password"}
KINDS = {  # kind -> (plural, namespaced) for what helm renders and `kubectl create` makes
    "Namespace": ("namespaces", False), "ServiceAccount": ("serviceaccounts", True),
    "Secret": ("secrets", True), "ConfigMap": ("configmaps", True),
    "Service": ("services", True), "Deployment": ("deployments", True),
    "PersistentVolumeClaim": ("persistentvolumeclaims", True), "Job": ("jobs", True),
    "NetworkPolicy": ("networkpolicies", True), "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False), "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
}
EXTRA_RESOURCES = [
    Resource(group="", version="v1", plural="serviceaccounts", kind="ServiceAccount",
             short_names=("sa",)),
    Resource(group="", version="v1", plural="secrets", kind="Secret"),
    Resource(group="", version="v1", plural="persistentvolumeclaims",
             kind="PersistentVolumeClaim", status=True, short_names=("pvc",)),
    Resource(group="apps", version="v1", plural="deployments", kind="Deployment", status=True,
             short_names=("deploy",)),
    Resource(group="networking.k8s.io", version="v1", plural="networkpolicies",
             kind="NetworkPolicy", short_names=("netpol",)),
    *[Resource(group="rbac.authorization.k8s.io", version="v1", plural=p, kind=k,
               namespaced=ns) for p, k, ns in (
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("roles", "Role", True), ("rolebindings", "RoleBinding", True))],
]


# ------------------------------------------------------------------------- parsing the docs
def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def yaml_files(text: str) -> dict[str, str]:
    """``yaml`` blocks whose first line is ``# NAME.yaml``: the files a page asks to save."""
    out = {}
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        first = block.splitlines()[0]
        if re.fullmatch(r"# [\w.-]+\.ya?ml", first.strip()):
            out[first.strip()[2:]] = block
    return out


def commands(block: str) -> list[list[str]]:
    """The simple commands of a block, in order: continuations joined, comments dropped,
    `&&`/`;` split, a heredoc kept with its command, pipes cut to their first command."""
    lines, out = block.splitlines(), []
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i].strip()
        heredoc = re.search(r"<<'?(\w+)'?", line)
        if heredoc:  # skip the body; the command itself is judged by its words
            while i + 1 < len(lines) and lines[i + 1].strip() != heredoc.group(1):
                i += 1
            i += 1
            line = line[:heredoc.start()]
        i += 1
        line = re.sub(r"\$\(openssl rand -hex (\d+)\)", lambda m: "a1" * int(m.group(1)), line)
        for placeholder, value in PLACEHOLDERS.items():
            line = line.replace(placeholder, value)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split, lexer.commenters = True, "#"
        current: list[str] = []
        after_pipe = False
        for token in [*lexer, ";"]:
            if token not in (";", "&&", "|", "||"):
                current.append(token)
                continue
            if current and not after_pipe and current[0] not in FORMATTERS:
                out.append(current)
            current, after_pipe = [], token == "|"
    return out


def _words(argv: list[str]) -> list[str]:
    """argv without leading VAR=value assignments."""
    i = 0
    while i < len(argv) and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[i]):
        i += 1
    return argv[i:]


def skipped(argv: list[str]) -> str | None:
    words = _words(argv)
    for prefix, why in SKIPPED.items():
        if tuple(words[:len(prefix)]) == prefix:
            return why
    return None


def test_command_parser() -> None:
    block = ("helm install zhufu charts/zhufu \\\n  --set a=\"$(openssl rand -hex 2)\"  # c\n"
             "kubectl -n zhufu logs deploy/x | tail\n"
             "kubectl get grporun <name> -o jsonpath='{.a}'; echo\n"
             "A=b python - <<'EOF'\nprint(1)\nEOF\n"
             "python3 -m venv v && v/bin/pip install x\n")
    assert commands(block) == [
        ["helm", "install", "zhufu", "charts/zhufu", "--set", "a=a1a1"],
        ["kubectl", "-n", "zhufu", "logs", "deploy/x"],
        ["kubectl", "get", "grporun", "greetings-grpo", "-o", "jsonpath={.a}"],
        ["A=b", "python", "-"],
        ["python3", "-m", "venv", "v"], ["v/bin/pip", "install", "x"]]
    assert skipped(["A=b", "python", "-"]) and not skipped(["kubectl", "get", "pods"])


# ------------------------------------------------------------------------- running them
@dataclass
class Session:
    """One page's run: the emulator, a working folder and what was installed."""

    emu: KubeEmulator
    workdir: Path
    env: dict[str, str]
    releases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    async def run(self, argv: list[str], timeout: float = 60) -> tuple[int | None, str]:
        """Run a command without blocking the emulator's loop (leading ``VAR=value`` words
        set its environment, as in a shell); rc None = still running after ``timeout``
        seconds (then killed)."""
        words = _words(argv)
        env = {**self.env, **dict(a.split("=", 1) for a in argv[:len(argv) - len(words)])}
        out_file = self.workdir / "command.out"
        with out_file.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *words, cwd=self.workdir, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=out)
            try:
                rc: int | None = await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                rc = None
        return rc, out_file.read_text(errors="replace")

    def store(self, obj: dict[str, Any], namespace: str | None) -> str:
        """Create (or replace) an object in the emulator; a missing namespace is an error,
        as on a real API server."""
        plural, namespaced = KINDS[obj["kind"]]
        name = obj["metadata"]["name"]
        ns = (obj["metadata"].get("namespace") or namespace or "default") if namespaced else None
        if ns is not None:
            assert self.emu.get("namespaces", None, ns), f'namespaces "{ns}" not found'
            obj["metadata"]["namespace"] = ns
        if self.emu.get(plural, ns, name) is not None:
            self.emu.delete(plural, ns, name)
        self.emu.create(plural, obj)
        if obj["kind"] == "Deployment":  # what the Deployment controller would report
            n = obj["spec"].get("replicas", 1)
            self.emu.patch("deployments", ns, name, {"status": {
                "observedGeneration": self.emu.get(plural, ns, name)["metadata"]["generation"],
                "replicas": n, "updatedReplicas": n, "readyReplicas": n,
                "availableReplicas": n}}, status=True)
        return f"{obj['kind']}/{name}"


def _flag(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _positionals(argv: list[str], with_value: set[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in with_value
        else:
            out.append(arg)
    return out


KUBECTL_VALUED = {"-n", "--namespace", "-f", "--filename", "-o", "--output", "-l",
                  "--selector", "--from-literal", "--clusterrole", "--group", "--context"}
HELM_VALUED = {"-n", "--namespace", "-f", "--values", "--set", "--set-string", "-o",
               "--version", "--timeout"}


async def kubectl(s: Session, argv: list[str]) -> None:
    args = argv[1:]
    ns = _flag(args, "-n", "--namespace")
    verb, *rest = _positionals(args, KUBECTL_VALUED)
    if verb in ("logs", "port-forward"):  # there -f is --follow, not --filename
        verb, *rest = _positionals(args, KUBECTL_VALUED - {"-f"})
    if verb == "apply":
        rc, out = await s.run(argv + ["--validate=false"])
        assert rc == 0, out
    elif verb == "create" and rest and rest[0] != "-f" and "-f" not in args:
        rc, out = await s.run(argv + ["--dry-run=client", "-o", "json"])
        assert rc == 0, out
        obj = json.loads(out)
        plural, namespaced = KINDS[obj["kind"]]
        if s.emu.get(plural, (obj["metadata"].get("namespace") or ns or "default")
                     if namespaced else None, obj["metadata"]["name"]) is not None:
            s.log.append(f"already exists (an alternative on the page): {argv}")
            return
        s.store(obj, ns)
    elif verb == "get" and ("-w" in args or "--watch" in args):
        rc, out = await s.run(argv, timeout=3)
        assert rc is None, f"exited {rc} instead of watching: {out}"
    elif verb == "wait":  # no operator runs here: the resources waited on must exist
        targets = [t for t in rest if "/" in t]
        assert targets, f"kubectl wait names no kind/name: {argv}"
        rc, out = await s.run(["kubectl", *(["-n", ns] if ns else []), "get", *targets])
        assert rc == 0, f"{targets} do not exist: {out}"
    elif verb in ("logs", "port-forward"):
        target = rest[0]
        kind, _, name = target.partition("/")
        if kind == "job":  # created by the operator from a resource (<name>-<stage>), or
            # a plain Job the page applied (examples/paper-compare-job.yaml)
            from zhufu.operator.builders import child_names
            from zhufu.operator.spec import KINDS as ZHUFU_KINDS

            jobs = {child_names(k, o["metadata"]["name"]).job
                    for k in ZHUFU_KINDS.values()
                    for o in s.emu.objects(k.plural, ns or "default")}
            jobs |= {o["metadata"]["name"] for o in s.emu.objects("jobs", ns or "default")}
            assert name in jobs, f"{target}: no resource would create it (have {jobs})"
        else:
            rc, out = await s.run(["kubectl", *(["-n", ns] if ns else []), "get", target])
            assert rc == 0, f"{target} does not exist: {out}"
    else:
        rc, out = await s.run(argv)
        assert rc == 0, out


async def helm(s: Session, argv: list[str]) -> None:
    verb = argv[1]
    ns = _flag(argv, "-n", "--namespace") or "default"
    if verb == "install":
        if "--create-namespace" in argv and not s.emu.get("namespaces", None, ns):
            s.store({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, None)
        assert s.emu.get("namespaces", None, ns), f'namespaces "{ns}" not found'
        rc, out = await s.run(argv + ["--dry-run=client", "-o", "json"])
        assert rc == 0, out
        release = json.loads(out)
        for doc in yaml.safe_load_all(release["manifest"]):
            if doc:
                s.store(doc, ns)
        s.releases[(ns, release["name"])] = release
    elif verb == "upgrade":
        keep = [a for a in argv[2:] if a not in ("--reuse-values", "--install", "--wait",
                                                 "--atomic")]
        rc, out = await s.run(["helm", "template", *keep])
        assert rc == 0, out
    elif verb == "uninstall":
        name = _positionals(argv[2:], HELM_VALUED)[0]
        assert (ns, name) in s.releases, f"release {name} in {ns} was never installed"
    else:
        rc, out = await s.run(argv)
        assert rc == 0, out


async def zhufu(s: Session, argv: list[str]) -> None:
    words = [a for a in _words(argv)[1:] if not a.startswith("-")]
    if words[:2] == ["operator", "render"]:  # needs no cluster: runs as written
        rc, out = await s.run(argv)
        assert rc == 0 and "kind: Job" in out, out
        return
    rc, out = await s.run(["zhufu", *words[:2], "--help"])
    assert rc == 0, out


async def run_command(s: Session, argv: list[str]) -> None:
    why = skipped(argv)
    if why:
        if _words(argv)[0] == ".venv/bin/pytest":
            for path in [a for a in argv[1:] if a.startswith("tests/")]:
                assert (REPO / path).exists(), path
        s.log.append(f"skipped ({why}): {shlex.join(argv)}")
        return
    handlers = {"kubectl": kubectl, "helm": helm, "zhufu": zhufu}
    if _words(argv) != argv:  # VAR=value words only before zhufu (the others parse argv)
        handlers = {"zhufu": zhufu}
    handler = handlers.get(_words(argv)[0])
    assert handler, (f"no check for {shlex.join(argv)}: teach tests/charts/test_docs_commands"
                     ".py or add it to SKIPPED with the reason")
    try:
        await handler(s, argv)
    except AssertionError as e:
        raise AssertionError(f"`{shlex.join(argv)}` does not work as written: {e}") from None
    s.log.append(f"ok: {shlex.join(argv)}")


def check_resources_have_what_jobs_need(s: Session) -> None:
    """Each Zhufu resource's namespace holds the job ServiceAccount, the S3 Secret and the
    LLM key Secret its pods mount (else its pods never start)."""
    from zhufu.operator.spec import KINDS as ZHUFU_KINDS

    settings = {}
    for dep in s.emu.objects("deployments"):
        env = {e["name"]: e.get("value") for c in dep["spec"]["template"]["spec"]["containers"]
               for e in c.get("env", [])}
        if "ZHUFU_JOB_SERVICE_ACCOUNT" in env:
            settings = env
    for kind in ZHUFU_KINDS.values():
        for obj in s.emu.objects(kind.plural):
            ns, where = obj["metadata"]["namespace"], f"{kind.kind} {obj['metadata']['name']}"
            assert settings, f"{where} created with no operator installed"
            needs = [("serviceaccounts", settings["ZHUFU_JOB_SERVICE_ACCOUNT"])]
            if settings.get("ZHUFU_S3_SECRET"):
                needs.append(("secrets", settings["ZHUFU_S3_SECRET"]))
            if obj["spec"].get("llmApiKeySecret"):
                needs.append(("secrets", obj["spec"]["llmApiKeySecret"]["name"]))
            for plural, name in needs:
                assert s.emu.get(plural, ns, name), (
                    f"{where} is in namespace {ns!r}, which has no {plural[:-1]} {name!r} for "
                    "its job pods")


async def _session(tmp_path: Path, emu: KubeEmulator, url: str, files: dict[str, str]) -> Session:
    for res in EXTRA_RESOURCES:
        emu.declare(res)
    for name in ("charts", "examples", "docs", "tests", "scripts"):
        (tmp_path / name).symlink_to(REPO / name)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path),
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return Session(emu, tmp_path, env)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
async def test_page_commands_work_as_written(page: Path, tmp_path: Path) -> None:
    text = page.read_text(encoding="utf-8")
    cmds = [c for block in bash_blocks(text) for c in commands(block)]
    if not cmds:
        pytest.skip("no bash block")
    async with emulator() as (emu, url):
        s = await _session(tmp_path, emu, url, yaml_files(text))
        for argv in cmds:
            await run_command(s, argv)
        check_resources_have_what_jobs_need(s)
    print("\n".join(s.log))


NOTES_INSTALLS = {
    "all-in-one with the LLM server": ["--set", "llm.enabled=true", "--set",
                                       "mlflow.enabled=true", "--set", "minio.enabled=true",
                                       "--set", "minio.auth.rootPassword=0123456789abcdef"],
    "external MLflow, S3 and LLM": ["-f", "charts/zhufu/ci/single-namespace-values.yaml"],
}


@pytest.mark.parametrize("install", list(NOTES_INSTALLS))
async def test_notes_commands_work_as_written(install: str, tmp_path: Path) -> None:
    """Install as NOTES.txt assumes (release "zhufu", namespace "zhufu"), then run every
    command NOTES.txt prints, in order."""
    async with emulator() as (emu, url):
        s = await _session(tmp_path, emu, url, {})
        argv = ["helm", "install", "zhufu", "charts/zhufu", "-n", "zhufu", "--create-namespace",
                *NOTES_INSTALLS[install]]
        await run_command(s, argv)
        if install == "external MLflow, S3 and LLM":  # the S3 Secret the values name
            s.store({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "zhufu-s3"}},
                    "zhufu")
        notes = s.releases[("zhufu", "zhufu")]["info"]["notes"]
        cmds = [c for line in notes.splitlines() if line.strip().startswith("kubectl ")
                for c in commands(line.strip())]
        assert len(cmds) >= 6, notes
        for cmd in cmds:
            await run_command(s, cmd)
        check_resources_have_what_jobs_need(s)


async def test_the_check_catches_the_namespace_mistake(tmp_path: Path) -> None:
    """`kubectl apply -f examples/crs/` without `-n` puts the resources in `default`, which
    has neither the job ServiceAccount nor the S3 Secret: the page check fails."""
    async with emulator() as (emu, url):
        s = await _session(tmp_path, emu, url, {})
        for argv in (["helm", "install", "zhufu", "charts/zhufu", "-n", "zhufu",
                      "--create-namespace", "--set", "minio.enabled=true", "--set",
                      "minio.auth.rootPassword=0123456789abcdef", "--set", "llm.enabled=true"],
                     ["kubectl", "apply", "-f", "examples/crs/"]):
            await run_command(s, argv)
        with pytest.raises(AssertionError, match="namespace 'default', which has no"):
            check_resources_have_what_jobs_need(s)
        with pytest.raises(AssertionError, match="does not work as written"):
            await run_command(s, ["kubectl", "-n", "zhufu", "get",
                                  "curationjobs,judgetrainings,grporuns", "-w"])


def _readme_zhufu_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return sorted({m for m in re.findall(r"`(zhufu [^`]+)`", text)})


@pytest.mark.parametrize("command", _readme_zhufu_commands())
def test_readme_zhufu_commands_exist(command: str) -> None:
    """Each `zhufu ...` the README names is a command, with the options it shows."""
    from typer.testing import CliRunner

    from zhufu.pipeline.cli import app

    words = []
    for word in command.split()[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        words.append(word)
    result = CliRunner().invoke(app, [*words, "--help"], terminal_width=200)
    assert result.exit_code == 0, f"{command}: {result.output}"
    for option in re.findall(r"--[a-z][a-z-]*", command):
        assert option in result.output, f"{command}: no {option} in `zhufu {' '.join(words)}`"
