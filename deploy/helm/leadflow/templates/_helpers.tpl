{{/* Names, labels and the per-service view of the values. */}}

{{- define "leadflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "leadflow.fullname" -}}
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

{{- define "leadflow.labels" -}}
{{ include "leadflow.releaseLabels" . }}
app.kubernetes.io/name: {{ include "leadflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "leadflow.releaseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: leadflow
{{- end -}}

{{/*
One service, as a dict: root (the chart's context), name (marketing, sales,
orders) and svc (the defaults merged with services.<name>). Build it with
  include "leadflow.service" (dict "root" $ "name" $name)
which returns it as YAML, then fromYaml.
*/}}
{{- define "leadflow.service" -}}
{{- $root := .root -}}
{{- $svc := mergeOverwrite (deepCopy $root.Values.defaults) (deepCopy (index $root.Values.services .name)) -}}
{{- $_ := set $svc "appId" (default (printf "leadflow-%s" .name) $svc.appId) -}}
{{- $_ := set $svc "kafkaUser" (default $svc.appId $svc.kafkaUser) -}}
{{- $_ := set $svc "resourceName" (printf "%s-%s" (include "leadflow.fullname" $root) .name | trunc 63 | trimSuffix "-") -}}
{{- $_ := set $svc "statefulSet" (eq $svc.store "rocksdb") -}}
{{- toYaml $svc -}}
{{- end -}}

{{/* Labels of one service's objects; .root, .name. */}}
{{- define "leadflow.serviceLabels" -}}
{{ include "leadflow.releaseLabels" .root }}
{{ include "leadflow.selectorLabels" . }}
{{- end -}}

{{- define "leadflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "leadflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* The Prometheus job of a service: stable across releases, used by the alerts and dashboard. */}}
{{- define "leadflow.job" -}}
leadflow-{{ . }}
{{- end -}}

{{- define "leadflow.image" -}}
{{- $image := .root.Values.image -}}
{{- $repository := printf "%s/%s-%s" $image.registry $image.name .name -}}
{{- if ($image.registry | empty) -}}{{- $repository = printf "%s-%s" $image.name .name -}}{{- end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "leadflow.strimziNamespace" -}}
{{- default .Release.Namespace .Values.strimzi.namespace -}}
{{- end -}}

{{/* Whether the services create their own topics. */}}
{{- define "leadflow.createTopics" -}}
{{- and .Values.topics.createOnStart (not .Values.strimzi.topics.enabled) -}}
{{- end -}}

{{- define "leadflow.usesSasl" -}}
{{- hasPrefix "SASL_" .Values.kafka.securityProtocol -}}
{{- end -}}

{{- define "leadflow.usesTls" -}}
{{- or (eq .Values.kafka.securityProtocol "SSL") (eq .Values.kafka.securityProtocol "SASL_SSL") -}}
{{- end -}}

{{/*
Refuses values that cannot work. Replicas beyond the partition count sit idle
(Kafka gives each partition to one consumer of the group), so neither a fixed
replica count nor an autoscaler may go past topics.partitions.
*/}}
{{- define "leadflow.validate" -}}
{{- $root := .root -}}
{{- $svc := .svc -}}
{{- $partitions := int $root.Values.topics.partitions -}}
{{- $where := printf "services.%s" .name -}}
{{- if lt $partitions 1 -}}
{{- fail "topics.partitions must be at least 1" -}}
{{- end -}}
{{- if not (has $svc.store (list "memory" "rocksdb")) -}}
{{- fail (printf "%s.store must be memory or rocksdb, not %v" $where $svc.store) -}}
{{- end -}}
{{- if not (has $svc.autoscaling.mode (list "hpa" "keda" "none")) -}}
{{- fail (printf "%s.autoscaling.mode must be hpa, keda or none, not %v" $where $svc.autoscaling.mode) -}}
{{- end -}}
{{- if gt (int $svc.replicas) $partitions -}}
{{- fail (printf "%s.replicas is %d but topics have %d partitions: workers beyond the partition count would sit idle" $where (int $svc.replicas) $partitions) -}}
{{- end -}}
{{- if ne $svc.autoscaling.mode "none" -}}
{{- if gt (int $svc.autoscaling.maxReplicas) $partitions -}}
{{- fail (printf "%s.autoscaling.maxReplicas is %d but topics have %d partitions: the autoscaler must stop at the partition count" $where (int $svc.autoscaling.maxReplicas) $partitions) -}}
{{- end -}}
{{- if lt (int $svc.autoscaling.minReplicas) 1 -}}
{{- fail (printf "%s.autoscaling.minReplicas must be at least 1: a worker also serves the HTTP API" $where) -}}
{{- end -}}
{{- if gt (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas) -}}
{{- fail (printf "%s.autoscaling.minReplicas is above maxReplicas" $where) -}}
{{- end -}}
{{- end -}}
{{- if and (gt (int $svc.standbyReplicas) 0) (eq $svc.autoscaling.mode "none") (ge (int $svc.standbyReplicas) (int $svc.replicas)) -}}
{{- fail (printf "%s.standbyReplicas must be below replicas: each standby lives on another worker" $where) -}}
{{- end -}}
{{- if not (has $root.Values.kafka.securityProtocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) -}}
{{- fail (printf "kafka.securityProtocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, not %v" $root.Values.kafka.securityProtocol) -}}
{{- end -}}
{{- $api := $root.Values.auth -}}
{{- if not $api.issuer -}}
{{- fail "auth.issuer is required: every API route takes a bearer token from the deployment's issuer, and the workers refuse to start without one (set auth.issuer and auth.jwksUrl, or auth.publicKey.secretName)" -}}
{{- end -}}
{{- if eq (empty $api.jwksUrl) (empty $api.publicKey.secretName) -}}
{{- fail "set exactly one of auth.jwksUrl and auth.publicKey.secretName: where the workers find the issuer's keys" -}}
{{- end -}}
{{- if and $root.Values.networkPolicy.enabled (not $root.Values.networkPolicy.kafka.peers) -}}
{{- fail "networkPolicy.kafka.peers is empty: with the NetworkPolicy on, the workers could not reach the brokers" -}}
{{- end -}}
{{- if and $root.Values.networkPolicy.enabled $api.jwksUrl (not $root.Values.networkPolicy.issuer.peers) -}}
{{- fail "networkPolicy.issuer.peers is empty: with the NetworkPolicy on, the workers could not fetch the issuer's keys from auth.jwksUrl" -}}
{{- end -}}
{{- if $root.Values.strimzi.users.enabled -}}
{{- $auth := $root.Values.strimzi.users.authentication -}}
{{- if and (eq $auth "scram-sha-512") (ne (include "leadflow.usesSasl" $root) "true") -}}
{{- fail "strimzi.users.authentication scram-sha-512 needs kafka.securityProtocol SASL_SSL (or SASL_PLAINTEXT)" -}}
{{- end -}}
{{- if and (eq $auth "scram-sha-512") (ne $root.Values.kafka.sasl.mechanism "SCRAM-SHA-512") -}}
{{- fail "strimzi.users.authentication scram-sha-512 needs kafka.sasl.mechanism SCRAM-SHA-512" -}}
{{- end -}}
{{- if and (eq $auth "tls") (not $root.Values.kafka.tls.clientCertificates) -}}
{{- fail "strimzi.users.authentication tls needs kafka.tls.clientCertificates (and securityProtocol SSL)" -}}
{{- end -}}
{{- end -}}
{{- if and $root.Values.kafka.tls.clientCertificates (ne (include "leadflow.usesTls" $root) "true") -}}
{{- fail "kafka.tls.clientCertificates needs kafka.securityProtocol SSL or SASL_SSL" -}}
{{- end -}}
{{- end -}}

{{/* The topics of the enabled services: list of {name, kind, compacted}, as YAML under "topics". */}}
{{- define "leadflow.topics" -}}
{{- $root := . -}}
{{- $topology := .Files.Get "files/topology.yaml" | fromYaml -}}
{{- $names := dict -}}
{{- $topics := list -}}
{{- range $event := $topology.events -}}
{{- $topics = append $topics (dict "name" $event "kind" "events") -}}
{{- $topics = append $topics (dict "name" (printf "%s.dlq" $event) "kind" "deadLetters") -}}
{{- end -}}
{{- range $name := keys $topology.services | sortAlpha -}}
{{- if (index $root.Values.services $name).enabled -}}
{{- $svc := include "leadflow.service" (dict "root" $root "name" $name) | fromYaml -}}
{{- $shape := index $topology.services $name -}}
{{- range $suffix := $shape.internal -}}
{{- $topic := printf "%s-%s" $svc.appId $suffix -}}
{{- $kind := ternary "commands" "internal" (eq $suffix "commands") -}}
{{- $topics = append $topics (dict "name" $topic "kind" $kind "service" $name) -}}
{{- $topics = append $topics (dict "name" (printf "%s.dlq" $topic) "kind" "deadLetters" "service" $name) -}}
{{- end -}}
{{- range $table := $shape.tables -}}
{{- $topics = append $topics (dict "name" (printf "%s-%s-changelog" $svc.appId $table) "kind" "changelog" "service" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "topics" $topics) -}}
{{- end -}}

{{/* A Kubernetes name for a Kafka topic (DNS-1123: lowercase, digits, '-', '.'). */}}
{{- define "leadflow.topicResourceName" -}}
{{- regexReplaceAll "[^a-z0-9.-]" (lower .) "-" | trunc 253 | trimSuffix "-" | trimSuffix "." -}}
{{- end -}}

{{/* A Prometheus duration of whole hours or minutes (6h, 90m) in seconds. */}}
{{- define "leadflow.seconds" -}}
{{- if hasSuffix "h" . -}}{{ mul (trimSuffix "h" . | int) 3600 }}
{{- else if hasSuffix "m" . -}}{{ mul (trimSuffix "m" . | int) 60 }}
{{- else -}}{{ fail (printf "%q: give whole hours (6h) or minutes (90m)" .) }}
{{- end -}}
{{- end -}}
