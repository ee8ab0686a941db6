{{- define "hub.fullname" -}}
{{- if contains "albus" .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s-albus" .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "hub.labels" -}}
app.kubernetes.io/name: albus-hub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hub.selector" -}}
app.kubernetes.io/name: albus-hub
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The environment variable holding one NATS user's password (nats-server reads $NAME in its config). */}}
{{- define "hub.passwordVar" -}}
ALBUS_NATS_PW_{{ . | upper | replace "-" "_" }}
{{- end -}}

{{/* The NATS users of the clusters, as a JSON list. */}}
{{- define "hub.clusterUsers" -}}
{{- $users := list -}}
{{- range .Values.clusters }}{{ $users = append $users (printf "albus-cluster-%s" .name) }}{{ end -}}
{{- toJson $users -}}
{{- end -}}
