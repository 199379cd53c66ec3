{{/* The chart's name, or nameOverride. */}}
{{- define "authz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, a valid DNS label. */}}
{{- define "authz.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The full name with a suffix, still a valid DNS label: (list . "admin"). */}}
{{- define "authz.suffixed" -}}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "authz.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "authz.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "authz.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that pick this release's pods. */}}
{{- define "authz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "authz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authz.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "authz.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the database URL: created from database.url, or an existing one. */}}
{{- define "authz.databaseSecret" -}}
{{- if .Values.database.url }}
{{- include "authz.suffixed" (list . "database-url") }}
{{- else }}
{{- required "database.existingSecret or database.url must be set" .Values.database.existingSecret }}
{{- end }}
{{- end }}

{{/* The Secret holding the key-encryption key: created from kek.value, or an existing one. */}}
{{- define "authz.kekSecret" -}}
{{- if .Values.kek.value }}
{{- include "authz.suffixed" (list . "kek-value") }}
{{- else }}
{{- required "kek.existingSecret or kek.value must be set" .Values.kek.existingSecret }}
{{- end }}
{{- end }}

{{/* http or https: what the probes and scrapers speak. */}}
{{- define "authz.scheme" -}}
{{- if .Values.tls.existingSecret }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}
