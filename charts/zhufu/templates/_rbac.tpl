{{/*
The operator's RBAC rules, least privilege, in two groups. A test compares the rendered rules
with an explicit list (tests/charts/test_rbac_chart.py): widen a rule here and it fails.

"framework" rules are what Kopf itself needs; "application" rules are what Zhufu's handlers
(operator/handlers.py through operator/kube.py) do with the children they create. Each verb
is there because a call needs it. Kopf runs with --standalone, so it needs no
(cluster)kopfpeerings; it keeps its progress in annotations (patch on the resource).
*/}}

{{/* Framework, cluster-scoped: Kopf lists and watches CRDs to notice its kinds appear,
change or go (without it Kopf only scans at startup and logs a warning). */}}
{{- define "zhufu.rbac.frameworkClusterRules" -}}
# framework: Kopf watches CustomResourceDefinitions for its resource kinds.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end -}}

{{/* Framework, cluster-scoped, single-namespace mode only: with --namespace Kopf lists and
watches namespaces to learn whether its namespace exists. With --all-namespaces it never
reads namespaces, so cluster-wide mode does not get this rule. */}}
{{- define "zhufu.rbac.frameworkNamespaceRules" -}}
# framework: Kopf (--namespace mode) checks that the watched namespace exists.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end -}}

{{/* Framework, namespaced: Kopf's events and the operator's own resources. */}}
{{- define "zhufu.rbac.frameworkRules" -}}
# framework: Kopf posts Events (core/v1) for handler outcomes and phase transitions.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# framework: Kopf lists and watches its resources and patches finalizers and progress
# annotations; handlers get a resource to read its (or a dependency's) status.
- apiGroups: ["zhufu.dev"]
  resources: ["curationjobs", "judgetrainings", "grporuns"]
  verbs: ["get", "list", "watch", "patch"]
# framework: handlers merge-patch phase, conditions and outputs into the status subresource.
- apiGroups: ["zhufu.dev"]
  resources: ["curationjobs/status", "judgetrainings/status", "grporuns/status"]
  verbs: ["patch"]
{{- end -}}

{{/* Application, namespaced: the children each resource owns. */}}
{{- define "zhufu.rbac.applicationRules" -}}
# application: one batch/v1 Job per resource, created if absent (409 = already there), read
# and watched for status, deleted with its parent.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete"]
# application: the Job's pods are listed and watched for status reasons (pull errors,
# OOMKilled, Unschedulable) and termination messages.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# application: the headless Service of a multi-node Job (torchrun rendezvous on pod 0) and the
# ConfigMap holding each Job's stage config (never a secret): created if absent, read to check
# that one of that name is owned by the resource (never adopted otherwise), deleted with the
# parent only when owned.
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["create", "get", "delete"]
# application: the Job controller's Events about a Job without pods (FailedCreate: a missing
# ServiceAccount, an exceeded quota) are listed, by field selector, to explain it in status.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
# application: a Secret named by spec.llmApiKeySecret must opt in (label or annotation
# zhufu.dev/llm-key=true); the operator asks for its metadata only (PartialObjectMetadata),
# never its data (tests/charts/test_rbac_chart.py checks the code for that).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end -}}
