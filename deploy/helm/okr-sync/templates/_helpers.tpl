{{- define "okr-sync.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "okr-sync.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "okr-sync.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "okr-sync.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end -}}

{{- define "okr-sync.secretName" -}}
{{ default (include "okr-sync.fullname" .) .Values.existingSecret }}
{{- end -}}

{{/* The environment every okr-sync container shares. */}}
{{- define "okr-sync.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "okr-sync.fullname" . }}
  - secretRef:
      name: {{ include "okr-sync.secretName" . }}
{{- end -}}
