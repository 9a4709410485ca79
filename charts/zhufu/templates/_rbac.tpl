{{/*
The operator's RBAC rules, least privilege, in three groups. A test compares the rendered
rules with an explicit list (tests/charts/test_rbac_chart.py): widen a rule here and it fails.

"framework" rules are what Kopf itself needs; "application" rules are what Zhufu's handlers
do with the children they create. Kopf runs with --standalone, so it needs no
(cluster)kopfpeerings.
*/}}

{{/* Framework, cluster-scoped: Kopf watches CRDs to notice its resources appear, change or
go (without it Kopf only scans at startup and logs a warning). */}}
{{- define "zhufu.rbac.frameworkClusterRules" -}}
# framework: Kopf watches CustomResourceDefinitions for its resource kinds.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
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
# framework: Kopf posts an Event per handler outcome (core/v1 events).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# framework: Kopf lists and watches its resources and patches finalizers and annotations.
- apiGroups: ["zhufu.dev"]
  resources: ["curationjobs", "judgetrainings", "grporuns"]
  verbs: ["get", "list", "watch", "patch"]
# framework: Kopf and the handlers write progress and conditions to the status subresource.
- apiGroups: ["zhufu.dev"]
  resources: ["curationjobs/status", "judgetrainings/status", "grporuns/status"]
  verbs: ["get", "patch"]
{{- end -}}

{{/* Application, namespaced: the children each resource owns. */}}
{{- define "zhufu.rbac.applicationRules" -}}
# application: one batch/v1 Job per resource; created if absent, deleted with its parent.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete", "patch"]
# application: the Job's pods are read for status reasons and termination messages.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# application: a headless Service gives multi-node Jobs their torchrun rendezvous address.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["create", "get", "delete"]
# application: each Job reads its stage config from a ConfigMap (never a secret).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "get", "list", "delete", "patch"]
{{- end -}}
