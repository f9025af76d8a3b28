{{/* Namespace of every object: the created one, else the release namespace. */}}
{{- define "nanofaas.namespace" -}}
{{- if .Values.namespace.create -}}
{{- .Values.namespace.name -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* Labels of the control-plane objects. */}}
{{- define "nanofaas.controlPlane.labels" -}}
app.kubernetes.io/name: nanofaas
app.kubernetes.io/component: control-plane
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Pod label selected by the Deployment and the Service. */}}
{{- define "nanofaas.controlPlane.selectorLabels" -}}
app: nanofaas-control-plane
{{- end -}}

{{/* prometheus.io/* annotations, when scraping is enabled. */}}
{{- define "nanofaas.controlPlane.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/path: {{ .Values.prometheus.scrape.path | quote }}
prometheus.io/port: {{ .Values.controlPlane.service.ports.actuator | quote }}
{{- end -}}
