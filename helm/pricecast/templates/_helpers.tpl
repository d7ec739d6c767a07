{{/*
Chart name, truncated to 63 characters because some Kubernetes name fields are limited to that
(DNS-1123 labels).
*/}}
{{- define "pricecast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: "<release>-<chart>", or just the release name when it already contains
the chart name, so `helm install pricecast .` gives "pricecast" and not "pricecast-pricecast".
Truncated to 52 characters, leaving room for the longest suffix the chart adds ("-canary-test"
and the like) within the 63-character limit.
*/}}
{{- define "pricecast.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Namespace of every object: lets the chart be rendered into a namespace other than the release's
(GitOps tools that template without --namespace).
*/}}
{{- define "pricecast.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Chart label value "<name>-<version>"; "+" is not allowed in label values.
*/}}
{{- define "pricecast.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels shared by both tracks. They are immutable on a Deployment, so they never include
the version or anything that changes between upgrades; the one Service selects both tracks with
them, which is what makes a replica-ratio canary work without a mesh.
*/}}
{{- define "pricecast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pricecast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/*
Common labels on every object: the recommended app.kubernetes.io set plus commonLabels.
*/}}
{{- define "pricecast.labels" -}}
helm.sh/chart: {{ include "pricecast.chart" . }}
{{ include "pricecast.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pricecast
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels for plain objects that are not part of a track and must not match the server selector
(helm test pod, dashboard, rules): the common labels with the component replaced.
*/}}
{{- define "pricecast.auxLabels" -}}
{{- $ctx := index . 0 -}}
{{- $component := index . 1 -}}
helm.sh/chart: {{ include "pricecast.chart" $ctx }}
app.kubernetes.io/name: {{ include "pricecast.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ $component }}
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: pricecast
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Track selector labels ("stable" or "canary"): each Deployment, PDB and per-track Service selects
its own pods with them. Call with (list $ "stable").
*/}}
{{- define "pricecast.trackSelectorLabels" -}}
{{- $ctx := index . 0 -}}
{{ include "pricecast.selectorLabels" $ctx }}
track: {{ index . 1 }}
{{- end }}

{{/*
ServiceAccount name: the created one, or the one given, or "default".
*/}}
{{- define "pricecast.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pricecast.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: a digest pins the exact bytes and wins over the tag; the tag defaults to the
chart's appVersion so chart and server versions move together.
*/}}
{{- define "pricecast.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
checkov annotations for skips that are decisions, each with its reason (checkov reads
checkov.io/skipN on the object it scans). Shared by both Deployments so the reasons live once.
*/}}
{{- define "pricecast.checkovWorkloadSkips" -}}
checkov.io/skip1: CKV_K8S_43=The tag is pinned to the chart appVersion; set image.digest to pin by digest, which a values file cannot know before the image is built.
checkov.io/skip2: CKV_K8S_15=IfNotPresent is required for images loaded into kind/minikube; tags are immutable releases, so Always would only add registry round trips.
checkov.io/skip3: CKV_K8S_40=The image user is uid 1000 (Dockerfile.base); runAsNonRoot, no capabilities and a read-only root filesystem already bound it.
checkov.io/skip4: CKV_K8S_35=S3 credentials come from an existing Secret by secretKeyRef; pydantic-settings and s3fs read them from the environment.
{{- end }}
