{{/* Names and labels. */}}
{{- define "albus.fullname" -}}
{{- if contains "albus" .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s-albus" .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "albus.labels" -}}
app.kubernetes.io/name: albus
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
albus.io/cluster: {{ .Values.AKOSettings.clusterName | quote }}
{{- end -}}

{{- define "albus.selector" -}}
app.kubernetes.io/name: albus
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The Service in front of health's readiness-gate webhook (fullname is at most 50 characters). */}}
{{- define "albus.webhookService" -}}
{{ include "albus.fullname" . }}-webhook
{{- end -}}

{{- define "albus.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The NATS_URL of the cluster's services: the in-cluster leaf, else the hub with this cluster's credentials. */}}
{{- define "albus.natsEnv" -}}
{{- if .Values.nats.leaf.enabled }}
- name: NATS_URL
  value: {{ printf "nats://%s-nats-leaf:%d" (include "albus.fullname" .) (int .Values.nats.leaf.port) | quote }}
{{- else }}
- name: NATS_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.nats.credentialsSecret | quote }}, key: url}
{{- end }}
{{- end -}}

{{/* AKO's avi-secret keys as albus's environment (never in the ConfigMap). */}}
{{- define "albus.controllerEnv" -}}
- name: CTRL_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ .Values.avicredentials.secretName | quote }}, key: username, optional: true}
- name: CTRL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .Values.avicredentials.secretName | quote }}, key: password, optional: true}
- name: CTRL_AUTHTOKEN
  valueFrom:
    secretKeyRef: {name: {{ .Values.avicredentials.secretName | quote }}, key: authtoken, optional: true}
{{- if .Values.avicredentials.caKey }}
- name: CTRL_CA_FILE
  value: /etc/albus/controller/ca.crt
{{- end }}
{{- end -}}

{{- define "albus.controllerVolume" -}}
{{- if .Values.avicredentials.caKey }}
- name: controller-ca
  secret:
    secretName: {{ .Values.avicredentials.secretName | quote }}
    items: [{key: {{ .Values.avicredentials.caKey | quote }}, path: ca.crt}]
{{- end }}
{{- end -}}

{{- define "albus.controllerMount" -}}
{{- if .Values.avicredentials.caKey }}
- {name: controller-ca, mountPath: /etc/albus/controller, readOnly: true}
{{- end }}
{{- end -}}

{{/*
One albus service's Deployment. Args: root (the chart's context), service,
serviceAccount, replicas, resources, controller (needs avi-secret), sealing
(needs the sealing key), natsEnv (the container's NATS_URL entries).
*/}}
{{- define "albus.deployment" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "albus.fullname" $root }}-{{ .service }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "albus.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .service }}
spec:
  replicas: {{ .replicas }}
  selector:
    matchLabels:
      {{- include "albus.selector" (dict "root" $root "component" .service) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "albus.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .service }}
      annotations:
        checksum/config: {{ .configChecksum }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $v.probes.port | quote }}
    spec:
      serviceAccountName: {{ .serviceAccount }}
      automountServiceAccountToken: {{ .kube }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext: {{- toYaml $v.podSecurityContext | nindent 8 }}
      # SIGTERM: the syncer hands back its leases, the watcher its Lease (docs/metrics.md).
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .service }}
          image: {{ include "albus.image" $root }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args: [{{ .service | quote }}, "--config", "/etc/albus/config.yaml"]
          env:
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - name: POD_NAMESPACE
              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
            {{- .natsEnv | nindent 12 }}
            {{- if .controller }}
            {{- include "albus.controllerEnv" $root | nindent 12 }}
            {{- end }}
            {{- if and .sealing $v.sealingKey.secretName }}
            - name: ALBUS_SEALING_KEY_FILE
              value: /etc/albus/sealing/sealing.key
            {{- end }}
          ports:
            - {name: metrics, containerPort: {{ $v.probes.port }}, protocol: TCP}
            {{- if and (eq .service "health") $v.readinessGate.enabled }}
            - {name: webhook, containerPort: {{ $v.readinessGate.port }}, protocol: TCP}
            {{- end }}
          livenessProbe:
            httpGet: {path: /healthz, port: metrics}
            initialDelaySeconds: 10
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          readinessProbe:
            httpGet: {path: /readyz, port: metrics}
            periodSeconds: 5
            timeoutSeconds: 3
          resources: {{- toYaml .resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: config, mountPath: /etc/albus/config.yaml, subPath: config.yaml, readOnly: true}
            - {name: tmp, mountPath: /tmp}
            {{- if .controller }}
            {{- include "albus.controllerMount" $root | nindent 12 }}
            {{- end }}
            {{- if and .sealing $v.sealingKey.secretName }}
            - {name: sealing-key, mountPath: /etc/albus/sealing, readOnly: true}
            {{- end }}
      volumes:
        - name: config
          configMap: {name: {{ include "albus.fullname" $root }}-config}
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
        {{- if .controller }}
        {{- include "albus.controllerVolume" $root | nindent 8 }}
        {{- end }}
        {{- if and .sealing $v.sealingKey.secretName }}
        - name: sealing-key
          secret:
            secretName: {{ $v.sealingKey.secretName | quote }}
            items: [{key: sealing.key, path: sealing.key}]
            defaultMode: 0400
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity: {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
