{{/*
Names, labels and derived settings shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "zhufu.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The object name prefix: fullnameOverride, or "<release>-<chart>" (just the release name
when it already contains the chart name). */}}
{{- define "zhufu.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>", kept within the 63-character name limit. */}}
{{- define "zhufu.componentName" -}}
{{- printf "%s-%s" (include "zhufu.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-") .component -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "zhufu.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "zhufu.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: zhufu
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: pass (dict "root" $ "component" "operator"). */}}
{{- define "zhufu.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zhufu.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of one component's objects: common labels plus the component. */}}
{{- define "zhufu.componentLabels" -}}
{{ include "zhufu.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* "repository@sha256:…" when the image has a digest, else "repository:tag" with the tag
defaulting to the chart's appVersion: pass (dict "image" .Values.x.image "root" $). */}}
{{- define "zhufu.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{- define "zhufu.operatorImage" -}}
{{- include "zhufu.image" (dict "image" .Values.operator.image "root" .) -}}
{{- end -}}

{{- define "zhufu.trainerImage" -}}
{{- include "zhufu.image" (dict "image" .Values.jobs.image "root" .) -}}
{{- end -}}

{{/* The MLflow server image: mlflow.image if set, else the operator image (which carries
mlflow and boto3 as dependencies of the zhufu package). */}}
{{- define "zhufu.mlflowImage" -}}
{{- if .Values.mlflow.image.repository -}}
{{- include "zhufu.image" (dict "image" .Values.mlflow.image "root" .) -}}
{{- else -}}
{{- include "zhufu.operatorImage" . -}}
{{- end -}}
{{- end -}}

{{- define "zhufu.operatorServiceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "zhufu.componentName" (dict "root" . "component" "operator")) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "zhufu.jobServiceAccountName" -}}
{{- if .Values.jobs.serviceAccount.create -}}
{{- default (include "zhufu.componentName" (dict "root" . "component" "job")) .Values.jobs.serviceAccount.name -}}
{{- else -}}
{{- required "jobs.serviceAccount.name is required when jobs.serviceAccount.create is false" .Values.jobs.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* In-cluster DNS name of a component's Service. */}}
{{- define "zhufu.serviceHost" -}}
{{- printf "%s.%s.svc" (include "zhufu.componentName" (dict "root" .root "component" .component)) .root.Release.Namespace -}}
{{- end -}}

{{/* The MLflow tracking URI given to the operator and its jobs: the in-chart server when
mlflow.enabled, else mlflow.trackingUri. */}}
{{- define "zhufu.mlflowUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s:%d" (include "zhufu.serviceHost" (dict "root" . "component" "mlflow")) (int .Values.mlflow.service.port) -}}
{{- else -}}
{{- .Values.mlflow.trackingUri -}}
{{- end -}}
{{- end -}}

{{/* The S3 endpoint: the in-chart MinIO when minio.enabled, else s3.endpoint. */}}
{{- define "zhufu.s3Endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "http://%s:%d" (include "zhufu.serviceHost" (dict "root" . "component" "minio")) (int .Values.minio.service.port) -}}
{{- else -}}
{{- .Values.s3.endpoint -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding MinIO's root login (keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY):
minio.auth.existingSecret, else the one the chart renders (minio-secret.yaml). */}}
{{- define "zhufu.minioSecretName" -}}
{{- default (include "zhufu.componentName" (dict "root" . "component" "minio")) .Values.minio.auth.existingSecret -}}
{{- end -}}

{{/* The Secret holding S3 credentials (keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY):
s3.existingSecret, else MinIO's when minio.enabled. */}}
{{- define "zhufu.s3SecretName" -}}
{{- if .Values.s3.existingSecret -}}
{{- .Values.s3.existingSecret -}}
{{- else if .Values.minio.enabled -}}
{{- include "zhufu.minioSecretName" . -}}
{{- end -}}
{{- end -}}

{{/* The LLM server saved judges talk to: tenancy.judgeLLMUrl, else the in-chart server's
/v1 when llm.enabled, else none. */}}
{{- define "zhufu.judgeLLMUrl" -}}
{{- if .Values.tenancy.judgeLLMUrl -}}
{{- .Values.tenancy.judgeLLMUrl -}}
{{- else if .Values.llm.enabled -}}
{{- printf "http://%s:%d/v1" (include "zhufu.serviceHost" (dict "root" . "component" "llm")) (int .Values.llm.service.port) -}}
{{- end -}}
{{- end -}}

{{/* The namespaces a single-namespace install watches, as a JSON list:
rbac.watchNamespaces, else the release namespace. */}}
{{- define "zhufu.watchNamespaces" -}}
{{- if .Values.rbac.watchNamespaces -}}
{{- .Values.rbac.watchNamespaces | toJson -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{/* Pod-level imagePullSecrets. */}}
{{- define "zhufu.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . | quote }}
{{- end }}
{{- end -}}
{{- end -}}
