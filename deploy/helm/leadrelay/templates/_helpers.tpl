{{/* The release's name, as every object's prefix. */}}
{{- define "leadrelay.fullname" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "leadrelay.selector" -}}
app.kubernetes.io/name: leadrelay
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "leadrelay.labels" -}}
{{ include "leadrelay.selector" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "leadrelay.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "leadrelay.secretName" -}}
{{ .Values.secrets.existingSecret | default (printf "%s-secrets" (include "leadrelay.fullname" .)) }}
{{- end -}}

{{/* Each service's environment-variable prefix. */}}
{{- define "leadrelay.prefix" -}}
{{ get (dict "intake" "INTAKE" "scoring" "SCORING" "router" "ROUTER" "sla-monitor" "SLA" "analytics" "ANALYTICS" "console" "CONSOLE") . }}
{{- end -}}

{{/* Whether something other than the Deployment sets a service's replicas. */}}
{{- define "leadrelay.autoscaled" -}}
{{- if or (dig "autoscaling" "enabled" false .svc) (and .root.Values.keda.enabled (hasKey .svc "lagScaling")) -}}
true
{{- end -}}
{{- end -}}

{{/* The configuration files given in values, as name → file. */}}
{{- define "leadrelay.configFiles" -}}
{{- $files := dict -}}
{{- with .Values.config.routing }}{{ $_ := set $files "routing.yaml" . }}{{ end -}}
{{- with .Values.config.sla }}{{ $_ := set $files "sla.yaml" . }}{{ end -}}
{{- with .Values.config.scoringModel }}{{ $_ := set $files "scoring-model.yaml" . }}{{ end -}}
{{- toYaml $files -}}
{{- end -}}

{{/* The environment every service shares, then its own. */}}
{{- define "leadrelay.env" -}}
{{- $root := .root -}}
{{- $prefix := include "leadrelay.prefix" .name -}}
- name: LEADRELAY_ENV
  value: {{ $root.Values.environment | quote }}
- name: LEADRELAY_MIGRATE_ON_START
  value: "false"
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ $root.Values.kafka.bootstrapServers | quote }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.database.urlSecret.name }}
      key: {{ $root.Values.database.urlSecret.key }}
{{- with $root.Values.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "leadrelay-%s" $.name | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $root.Values.tracing.sampleRatio | quote }}
{{- end }}
- name: {{ $prefix }}_HOST
  value: "0.0.0.0"
- name: {{ $prefix }}_PORT
  value: {{ .svc.port | quote }}
{{- if and (eq .name "router") $root.Values.config.routing }}
- name: ROUTER_CONFIG_PATH
  value: /etc/leadrelay/routing.yaml
{{- end }}
{{- if and (eq .name "sla-monitor") $root.Values.config.sla }}
- name: SLA_POLICIES_PATH
  value: /etc/leadrelay/sla.yaml
{{- end }}
{{- if and (eq .name "scoring") $root.Values.config.scoringModel }}
- name: SCORING_MODEL_PATH
  value: /etc/leadrelay/scoring-model.yaml
{{- end }}
{{- if eq .name "console" }}
{{- range $upstream, $variable := dict "scoring" "SCORING" "router" "ROUTER" "sla-monitor" "SLA" "analytics" "ANALYTICS" }}
- name: CONSOLE_{{ $variable }}_URL
  value: {{ printf "http://%s-%s:%v" (include "leadrelay.fullname" $root) $upstream (get $root.Values.services $upstream).port | quote }}
- name: CONSOLE_{{ $variable }}_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "leadrelay.secretName" $root }}
      key: {{ $variable }}_ADMIN_TOKEN
{{- end }}
{{- end }}
{{- range $other, $spec := $root.Values.services }}
{{- if $spec.enabled }}
- name: LEADRELAY_{{ $other | upper | replace "-" "_" }}_URL
  value: {{ printf "http://%s-%s:%v" (include "leadrelay.fullname" $root) $other $spec.port | quote }}
{{- end }}
{{- end }}
{{- range $key, $value := .svc.env }}
- name: {{ $key }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}
