"""The operator's RBAC is least privilege, and the job pods' identity has no API rights.

1. The rendered rules equal an explicit list (a widened verb or resource fails the test), in
   both cluster-wide and single-namespace mode, and every rule is marked framework/application.
2. Every API call the operator's code makes (read from operator/*.py with ``ast``) and every
   resource its Kopf handlers watch is allowed by those rules, so a new call without a rule
   fails here rather than with a 403 on a cluster.
3. The job pods' ServiceAccount is bound to nothing and mounts no token.
4. Namespace users get Zhufu's kinds through the built-in view/edit/admin roles (aggregated
   ClusterRoles): read for view, write for edit and admin, never the status subresource's
   writes, nothing outside zhufu.dev.
No cluster runs here: rules are compared as data, not enforced by an API server.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

OPERATOR_DIR = Path(__file__).resolve().parents[2] / "operator"
OWN = ["curationjobs", "judgetrainings", "grporuns"]

FRAMEWORK_CLUSTER = [
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
     "verbs": ["list", "watch"]},
]
FRAMEWORK_NAMESPACES = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]
FRAMEWORK = [
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": ["zhufu.dev"], "resources": OWN, "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["zhufu.dev"], "resources": [f"{p}/status" for p in OWN], "verbs": ["patch"]},
]
APPLICATION = [
    {"apiGroups": ["batch"], "resources": ["jobs"],
     "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["services", "configmaps"],
     "verbs": ["create", "get", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
]


def _rules_of(rendered, kind: str, name: str) -> list[dict]:
    return rendered.named(kind, name)["rules"]


def test_cluster_wide_rules_are_exactly_the_expected_list(chart) -> None:
    r = chart.render()
    assert _rules_of(r, "ClusterRole", chart.name("operator")) == (
        FRAMEWORK_CLUSTER + FRAMEWORK + APPLICATION)
    assert not r.of_kind("Role") and not r.of_kind("RoleBinding")


def test_single_namespace_rules_are_exactly_the_expected_list(chart) -> None:
    r = chart.render(chart.ci("single-namespace"))
    assert _rules_of(r, "ClusterRole", chart.name("operator")) == (
        FRAMEWORK_CLUSTER + FRAMEWORK_NAMESPACES)
    role = r.named("Role", chart.name("operator"))
    assert role["metadata"]["namespace"] == chart.namespace
    assert role["rules"] == FRAMEWORK + APPLICATION
    binding = r.named("RoleBinding", chart.name("operator"))
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": chart.name("operator")}


def test_a_widened_rule_is_caught(chart) -> None:
    """The comparison above is sensitive to one extra verb (the test can fail)."""
    rules = _rules_of(chart.render(), "ClusterRole", chart.name("operator"))
    widened = [dict(rule) for rule in rules]
    widened[-1] = {**widened[-1], "verbs": [*widened[-1]["verbs"], "patch"]}
    assert widened != FRAMEWORK_CLUSTER + FRAMEWORK + APPLICATION


def _operator_roles(rendered) -> list[dict]:
    return [d for d in rendered.of_kind("ClusterRole") + rendered.of_kind("Role")
            if d["metadata"]["name"].endswith("-operator")]


@pytest.mark.parametrize("mode", ["default", "single-namespace"])
def test_no_wildcards_secrets_or_escalation(chart, mode: str) -> None:
    r = chart.render(chart.ci(mode))
    for role in _operator_roles(r):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            assert not {"serviceaccounts", "roles", "rolebindings", "clusterroles",
                        "clusterrolebindings", "pods/exec", "nodes"} & set(rule["resources"])
            if "secrets" in rule["resources"]:  # metadata of an LLM key Secret only
                assert rule == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
            assert not {"escalate", "bind", "impersonate", "update"} & set(rule["verbs"])


def test_operator_code_reads_only_secret_metadata() -> None:
    """The ``get`` on secrets is for the LLM key opt-in label: every call naming a Secret
    is ``kube().get_metadata`` (PartialObjectMetadata), never a GET of its data."""
    seen = []
    for path in sorted(OPERATOR_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and any(isinstance(a, ast.Constant) and a.value in ("Secret", "secrets")
                            for a in node.args)):
                seen.append((path.name, node.func.attr))
    assert seen and {m for _, m in seen} == {"get_metadata"}, seen


@pytest.mark.parametrize("mode", ["default", "single-namespace"])
def test_every_rule_is_marked_framework_or_application(chart, mode: str) -> None:
    text = chart.render(chart.ci(mode)).text
    for doc in text.split("\n---"):
        if "\nkind: ClusterRole\n" not in doc and "\nkind: Role\n" not in doc:
            continue
        if "aggregate-to-" in doc:
            continue  # the users' roles (test_user_roles_aggregate_into_view_and_edit)
        lines = doc.split("rules:", 1)[1].splitlines()
        for i, line in enumerate(lines):
            if not line.strip().startswith("- apiGroups:"):
                continue
            start = i
            while start > 0 and lines[start - 1].strip().startswith("#"):
                start -= 1  # the comment block right above this rule
            assert start < i, f"{mode}: rule without a comment: {line.strip()}"
            first = lines[start].strip()
            assert first.startswith(("# framework:", "# application:")), first


def _allowed(rules: list[dict], group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
               for r in rules)


def _code_calls() -> set[tuple[str, str, str]]:
    """(group, resource, verb) of each ``kube().<method>(...)`` call in operator/*.py."""
    from zhufu.operator import builders, settings, spec
    from zhufu.operator.kube import collection_path

    def resource_of(api_version: str, kind_or_plural: str) -> tuple[str, str]:
        path = collection_path(api_version, kind_or_plural, "ns")
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        return group, path.rsplit("/", 1)[1]

    verbs = {"get": "get", "get_metadata": "get", "list": "list", "delete": "delete",
             "patch_status": "patch"}
    calls: set[tuple[str, str, str]] = set()
    child_verbs: set[str] = set()
    for path in sorted(OPERATOR_DIR.glob("*.py")):
        if path.name == "kube.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Call)
                    and getattr(node.func.value.func, "id", None) == "kube"):
                continue
            method = node.func.attr
            if method == "create_if_absent":
                continue  # children: derived from the builders below
            if method == "events":  # a field-selected list of core/v1 Events
                calls.add(("", "events", "list"))
                continue
            assert method in verbs, f"{path.name}:{node.lineno}: unknown kube().{method}"
            api, what = node.args[0], node.args[1]
            if not (isinstance(api, ast.Constant) or getattr(api, "id", "") == "API_VERSION"):
                child_verbs.add(verbs[method])  # on a child, by variables: every child kind
                continue
            api_version = spec.API_VERSION if isinstance(api, ast.Name) else api.value
            plurals = [what.value] if isinstance(what, ast.Constant) else OWN
            for plural in plurals:
                group, res = resource_of(api_version, plural)
                if method == "patch_status":
                    res = f"{res}/status"
                calls.add((group, res, verbs[method]))
    for kind in spec.KINDS.values():
        for child in builders.children(kind, "x", "ns", {"nodes": 2}, {},
                                       settings.OperatorSettings()):
            group, res = resource_of(child["apiVersion"], child["kind"])
            calls.update((group, res, verb) for verb in {"create", *child_verbs})
    return calls


def test_every_operator_api_call_is_allowed(chart) -> None:
    calls = _code_calls()
    assert ("batch", "jobs", "create") in calls and ("zhufu.dev", "grporuns/status",
                                                    "patch") in calls
    for mode in ("default", "single-namespace"):
        r = chart.render(chart.ci(mode))
        rules = [rule for role in _operator_roles(r) for rule in role["rules"]]
        denied = sorted(c for c in calls if not _allowed(rules, *c))
        assert not denied, f"{mode}: the operator calls these without a rule: {denied}"


def test_every_kopf_handler_resource_is_watchable_and_events_postable(chart) -> None:
    import kopf

    import zhufu.operator.handlers  # noqa: F401  (registers the handlers)

    rules = _rules_of(chart.render(), "ClusterRole", chart.name("operator"))
    registry = kopf.get_default_registry()
    changing = {h.selector for h in registry._changing.get_all_handlers()}
    watching = {h.selector for h in registry._watching.get_all_handlers()}
    assert changing and watching
    for selector in changing | watching:
        group = selector.group or ""
        for verb in ("list", "watch"):
            assert _allowed(rules, group, selector.any_name, verb), (selector, verb)
    for selector in changing:  # finalizers and progress annotations are patched
        assert _allowed(rules, selector.group, selector.any_name, "patch"), selector
    assert _allowed(rules, "", "events", "create")


@pytest.mark.parametrize("mode", ["default", "single-namespace", "all-in-one"])
def test_job_service_account_has_no_rights_and_no_token(chart, mode: str) -> None:
    r = chart.render(chart.ci(mode))
    job_sa = r.named("ServiceAccount", chart.name("job"))
    assert job_sa["automountServiceAccountToken"] is False
    for binding in r.of_kind("RoleBinding") + r.of_kind("ClusterRoleBinding"):
        for subject in binding["subjects"]:
            assert subject["name"] != chart.name("job"), f"{binding['metadata']['name']} binds it"
            assert subject["name"] == chart.name("operator")
    # Every pod but the operator's runs as the job identity without a token.
    for where, pod in r.pod_specs():
        if where == f"Deployment/{chart.name('operator')}":
            assert pod["serviceAccountName"] == chart.name("operator")
            continue
        assert pod["serviceAccountName"] == chart.name("job"), where
        assert pod["automountServiceAccountToken"] is False, where


def test_operator_service_account_bound_once(chart) -> None:
    r = chart.render()
    bindings = r.of_kind("ClusterRoleBinding") + r.of_kind("RoleBinding")
    assert len(bindings) == 1
    assert bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": chart.name("operator"),
                                        "namespace": chart.namespace}]


def test_rbac_create_false_renders_no_rbac(chart) -> None:
    r = chart.render(None, "rbac.create=false")
    assert not [d for d in r.docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role",
                                                    "RoleBinding")]


USER_VIEW = [{"apiGroups": ["zhufu.dev"],
              "resources": OWN + [f"{p}/status" for p in OWN],
              "verbs": ["get", "list", "watch"]}]
USER_EDIT = [{"apiGroups": ["zhufu.dev"], "resources": OWN,
              "verbs": ["create", "update", "patch", "delete", "deletecollection"]}]
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


@pytest.mark.parametrize("mode", ["default", "single-namespace"])
def test_user_roles_aggregate_into_view_and_edit(chart, mode: str) -> None:
    r = chart.render(chart.ci(mode))
    view, edit = r.named("ClusterRole", chart.name("view")), r.named("ClusterRole",
                                                                     chart.name("edit"))
    assert view["rules"] == USER_VIEW and edit["rules"] == USER_EDIT
    labels = {n: {k.removeprefix(AGGREGATE) for k, v in role["metadata"]["labels"].items()
                  if k.startswith(AGGREGATE) and v == "true"} for n, role in
              (("view", view), ("edit", edit))}
    assert labels == {"view": {"view", "edit", "admin"}, "edit": {"edit", "admin"}}
    # Never bound by the chart: the built-in roles carry them to whoever is bound there.
    for binding in r.of_kind("RoleBinding") + r.of_kind("ClusterRoleBinding"):
        assert binding["roleRef"]["name"] == chart.name("operator")
    # Users never write status (the operator's) and get nothing outside zhufu.dev.
    assert not any(res.endswith("/status") for rule in USER_EDIT for res in rule["resources"])


@pytest.mark.parametrize("sets", [("rbac.aggregateToDefaultRoles=false",), ("rbac.create=false",)])
def test_user_roles_can_be_left_out(chart, sets: tuple[str, ...]) -> None:
    names = {d["metadata"]["name"] for d in chart.render(None, *sets).of_kind("ClusterRole")}
    assert not names & {chart.name("view"), chart.name("edit")}
