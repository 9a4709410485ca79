"""Turn a stored pod into a local process's command, env and folders (the kubelet's setup).

:meth:`PodSetup.prepare` gives each pod its own folder and maps the pod spec onto it:

- **volumes**: ``emptyDir`` volumes are sub-folders, a ConfigMap's keys and a Secret's items
  become files (a missing ConfigMap keeps the pod in ``ContainerCreating``, a missing
  Secret or key is ``CreateContainerConfigError``: :class:`PodNotReady`). Every container
  path in the command, args (also after ``--opt=``), env values, ``workingDir`` and
  ``terminationMessagePath`` is mapped onto these folders;
- **env**: the image's env (:data:`IMAGE_ENV`, what ``images/trainer/Dockerfile`` sets) with
  ``PATH`` putting this venv's scripts first (``zhufu``, ``torchrun``, ``kopf`` are the
  installed console scripts), then ``envFrom``, ``value`` (``$(VAR)`` expanded),
  ``secretKeyRef``/``configMapKeyRef`` from the stored objects, ``fieldRef`` (name,
  namespace, uid, labels, annotations — a Job's completion index —, node, IPs);
  ``$(VAR)`` in command and args is expanded the way Kubernetes does;
- **API access**: unless ``automountServiceAccountToken`` is false (pod, then its
  ServiceAccount), the service-account mount is a kubeconfig for the emulator in
  ``KUBECONFIG`` (the emulator speaks plain HTTP, which in-cluster config cannot);
- **network**: all pods share 127.0.0.1. Pod DNS names ``HOSTNAME.SUBDOMAIN[.NS[.svc…]]``
  (an Indexed Job behind a headless Service) become ``127.0.0.1`` in command, args and env;
  each declared ``containerPort`` gets one free loopback port per subdomain (or pod),
  rewritten where it appears as ``=PORT`` or ``:PORT``, so clusters can run side by side;
  ``0.0.0.0`` becomes ``127.0.0.1`` (nothing listens beyond loopback).
"""

from __future__ import annotations

import base64
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kube_emulator import KubeEmulator

BIN = Path(sys.executable).parent
#: The trainer image's ENV (images/trainer/Dockerfile), minus PATH which points at this venv.
IMAGE_ENV = {"HOME": "/tmp", "HF_HOME": "/var/cache/zhufu/huggingface",
             "TRITON_CACHE_DIR": "/var/cache/zhufu/triton",
             "VLLM_CACHE_ROOT": "/var/cache/zhufu/vllm", "XDG_CACHE_HOME": "/var/cache/zhufu",
             "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
NODE_NAME = "emulated-node"
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class PodNotReady(Exception):
    """The container cannot start yet: (reason, message) as its waiting state shows them."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class Prepared:
    """What the kubelet needs to run (and re-run) the pod's container."""

    command: list[str]
    env: dict[str, str]
    cwd: Path
    termination: Path
    policy: str  # terminationMessagePolicy
    probe: tuple[int, str, float] | None  # readiness httpGet: (local port, path, period)


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR.sub(sub, value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def localise(value: str, mounts: dict[str, Path]) -> str:
    """``value`` with a container path under a mount (also after ``--opt=``) made local."""
    head, sep, tail = value.partition("=") if value.startswith("-") else ("", "", value)
    for path, local in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        if tail == path or tail.startswith(path.rstrip("/") + "/"):
            return f"{head}{sep}{local}{tail[len(path):]}"
    return value


def field_ref(pod: dict[str, Any], path: str) -> str:
    meta = pod["metadata"]
    m = _FIELD.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": NODE_NAME,
              "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
              "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}
    if path not in simple:
        raise PodNotReady("CreateContainerConfigError", f"fieldRef {path!r} is not emulated")
    return str(simple[path] or "")


class PodSetup:
    """Prepares pods of one emulator; remembers the loopback port given to each pod port."""

    def __init__(self, emu: KubeEmulator, api_url: str = "") -> None:
        self.emu = emu
        self.api_url = api_url
        self._ports: dict[tuple[str, str, int], int] = {}

    def prepare(self, pod: dict[str, Any], root: Path) -> Prepared:
        """Folders, env, command and working dir of the pod's (first) container."""
        spec = pod["spec"]
        container = spec["containers"][0]
        root.mkdir(parents=True, exist_ok=True)
        mounts = self._mounts(pod, container, root)
        termination_path = container.get("terminationMessagePath", "/dev/termination-log")
        termination = root / "termination-log"
        mounts = {**mounts, termination_path: termination}
        rewrite, ports = self._network(pod)
        env: dict[str, str] = {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin"}
        env.update({k: localise(v, mounts) for k, v in IMAGE_ENV.items()})
        if self._automount(pod) and self.api_url:
            config = root / "serviceaccount" / "kubeconfig"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(yaml.safe_dump(_kubeconfig(self.api_url,
                                                         pod["metadata"]["namespace"])))
            env["KUBECONFIG"] = str(config)
        env.update(self._env(pod, container, mounts, rewrite))
        argv = [*container.get("command", []), *container.get("args", [])]
        if not argv:
            raise PodNotReady("CreateContainerError",
                              "no command: an image's own entrypoint is not emulated")
        argv = [rewrite(localise(expand(a, env), mounts)) for a in argv]
        cwd = Path(localise(container.get("workingDir", "/workspace"), mounts))
        if not str(cwd).startswith(str(root)):
            cwd = root / "workdir"  # never the repository: its operator/ shadows the stdlib
        cwd.mkdir(parents=True, exist_ok=True)
        return Prepared(argv, env, cwd, termination,
                        container.get("terminationMessagePolicy", "File"),
                        self._probe(container, ports))

    def _automount(self, pod: dict[str, Any]) -> bool:
        spec = pod["spec"]
        if "automountServiceAccountToken" in spec:
            return bool(spec["automountServiceAccountToken"])
        sa = self.emu.get("serviceaccounts", pod["metadata"]["namespace"],
                          spec.get("serviceAccountName") or "default") or {}
        return bool(sa.get("automountServiceAccountToken", True))

    @staticmethod
    def _probe(container: dict[str, Any], ports: dict[int, int]
               ) -> tuple[int, str, float] | None:
        http = (container.get("readinessProbe") or {}).get("httpGet")
        if not http:
            return None
        port = http["port"]
        if isinstance(port, str) and not port.isdigit():
            named = {p.get("name"): int(p["containerPort"]) for p in container.get("ports", [])}
            port = named[port]
        period = float(container["readinessProbe"].get("periodSeconds", 10))
        return ports.get(int(port), int(port)), http.get("path", "/"), min(period, 2.0)

    def _mounts(self, pod: dict[str, Any], container: dict[str, Any], root: Path
                ) -> dict[str, Path]:
        ns = pod["metadata"]["namespace"]
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        mapping: dict[str, Path] = {}
        for mount in container.get("volumeMounts", []):
            vol = volumes.get(mount["name"])
            if vol is None:
                raise PodNotReady("CreateContainerConfigError",
                                  f"volume {mount['name']!r} is not defined")
            local = root / "volumes" / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            if "configMap" in vol:
                files = self._config_map(ns, vol["configMap"]["name"])
                _write_items(local, files, vol["configMap"].get("items"))
            elif "secret" in vol:
                secret = self._secret(ns, vol["secret"]["secretName"])
                _write_items(local, secret, vol["secret"].get("items"))
            elif "emptyDir" not in vol:
                raise PodNotReady("CreateContainerConfigError",
                                  f"volume {mount['name']!r}: only emptyDir, configMap and "
                                  "secret volumes are emulated")
            mapping[mount["mountPath"]] = local / mount.get("subPath", "")
        return mapping

    def _config_map(self, ns: str, name: str) -> dict[str, str]:
        cm = self.emu.get("configmaps", ns, name)
        if cm is None:
            raise PodNotReady("ContainerCreating", f'configmap "{name}" not found')
        return dict(cm.get("data") or {})

    def _secret(self, ns: str, name: str) -> dict[str, str]:
        secret = self.emu.get("secrets", ns, name)
        if secret is None:
            raise PodNotReady("CreateContainerConfigError", f'secret "{name}" not found')
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def _env(self, pod: dict[str, Any], container: dict[str, Any], mounts: dict[str, Path],
             rewrite: Callable[[str], str]) -> dict[str, str]:
        ns = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for src in container.get("envFrom", []):
            if "secretRef" in src:
                env.update(self._secret(ns, src["secretRef"]["name"]))
            elif "configMapRef" in src:
                env.update(self._config_map(ns, src["configMapRef"]["name"]))
        for var in container.get("env", []):
            name = var["name"]
            if "value" in var:
                env[name] = rewrite(localise(expand(str(var["value"]), env), mounts))
                continue
            ref = var.get("valueFrom") or {}
            if "fieldRef" in ref:
                env[name] = field_ref(pod, ref["fieldRef"]["fieldPath"])
                continue
            if "secretKeyRef" in ref:
                data = self._secret(ns, ref["secretKeyRef"]["name"])
                source = f"Secret {ns}/{ref['secretKeyRef']['name']}"
                key = ref["secretKeyRef"]["key"]
            elif "configMapKeyRef" in ref:
                data = self._config_map(ns, ref["configMapKeyRef"]["name"])
                source = f"ConfigMap {ns}/{ref['configMapKeyRef']['name']}"
                key = ref["configMapKeyRef"]["key"]
            else:
                raise PodNotReady("CreateContainerConfigError", f"env {name}: unsupported source")
            if key not in data:
                raise PodNotReady("CreateContainerConfigError",
                                  f"couldn't find key {key} in {source}")
            env[name] = data[key]
        return env

    def _network(self, pod: dict[str, Any]) -> tuple[Callable[[str], str], dict[int, int]]:
        """A function rewriting pod DNS names and declared ports onto loopback; the ports."""
        ns = pod["metadata"]["namespace"]
        aliases: list[str] = []
        for other in self.emu.objects("pods", ns):
            spec = other.get("spec") or {}
            if spec.get("hostname") and spec.get("subdomain"):
                base = f"{spec['hostname']}.{spec['subdomain']}"
                aliases += [f"{base}.{ns}.svc.cluster.local", f"{base}.{ns}.svc",
                            f"{base}.{ns}", base]
        aliases.sort(key=len, reverse=True)
        group = pod["spec"].get("subdomain") or pod["metadata"]["name"]
        ports: dict[int, int] = {}
        for c in pod["spec"].get("containers", []):
            for p in c.get("ports", []):
                key = (ns, group, int(p["containerPort"]))
                if key not in self._ports:
                    self._ports[key] = free_port()
                ports[int(p["containerPort"])] = self._ports[key]
        port_re = re.compile(r"(?<=[=:])(" + "|".join(str(p) for p in ports) + r")\b") \
            if ports else None

        def rewrite(value: str) -> str:
            for alias in aliases:
                value = value.replace(alias, "127.0.0.1")
            value = value.replace("0.0.0.0", "127.0.0.1")
            if port_re is not None:
                value = port_re.sub(lambda m: str(ports[int(m.group(1))]), value)
            return value
        return rewrite, ports


def _write_items(local: Path, data: dict[str, str], items: list[dict[str, Any]] | None) -> None:
    for item in items or [{"key": k, "path": k} for k in data]:
        if item["key"] not in data:
            raise PodNotReady("CreateContainerConfigError",
                              f"couldn't find key {item['key']} in the volume's source")
        (local / item["path"]).write_text(data[item["key"]], encoding="utf-8")


def _kubeconfig(url: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
            "clusters": [{"name": "in-cluster", "cluster": {"server": url}}],
            "users": [{"name": "sa", "user": {"token": "service-account"}}],
            "contexts": [{"name": "in-cluster", "context": {
                "cluster": "in-cluster", "user": "sa", "namespace": namespace}}]}
