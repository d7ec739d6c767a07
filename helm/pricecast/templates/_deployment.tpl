{{/*
One server Deployment for a track. Both tracks share everything except the track label, the model
version, the replica count and the (test-only) fault injection, so the pod spec lives here once.
Call with (dict "root" $ "track" "stable" "values" .Values.stable).

The model version is an environment variable of the pod template on purpose: the ReplicaSet
history then records which model each revision served, and `kubectl rollout undo` restores it.
*/}}
{{- define "pricecast.deployment" -}}
{{- $ := .root -}}
{{- $track := .track -}}
{{- $t := .values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "pricecast.fullname" $ }}-{{ $track }}
  namespace: {{ include "pricecast.namespace" $ }}
  labels:
    {{- include "pricecast.labels" $ | nindent 4 }}
    track: {{ $track }}
  annotations:
    {{- include "pricecast.checkovWorkloadSkips" $ | nindent 4 }}
spec:
  {{- if not (and (eq $track "stable") $.Values.autoscaling.enabled) }}
  replicas: {{ $t.replicaCount }}
  {{- end }}
  revisionHistoryLimit: {{ $.Values.revisionHistoryLimit }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # Never go below the requested capacity while a new model rolls out.
      maxUnavailable: 0
      maxSurge: 25%
  selector:
    matchLabels:
      {{- include "pricecast.trackSelectorLabels" (list $ $track) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "pricecast.trackSelectorLabels" (list $ $track) | nindent 8 }}
        {{- with $.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") $ | sha256sum }}
        kubectl.kubernetes.io/default-container: server
        {{- with $.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $t.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "pricecast.serviceAccountName" $ }}
      # The server never calls the Kubernetes API.
      automountServiceAccountToken: false
      {{- with $.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $.Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $.Values.terminationGracePeriodSeconds }}
      {{- with $.Values.extraInitContainers }}
      initContainers:
        {{- /* tpl: an entry may say image: '{{ include "pricecast.image" . }}' to run the server image. */}}
        {{- tpl (toYaml .) $ | nindent 8 }}
      {{- end }}
      containers:
        - name: server
          image: {{ include "pricecast.image" $ | quote }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          command: ["pricecast", "serve"]
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "pricecast.fullname" $ }}
          env:
            - name: PRICECAST_TRACK
              value: {{ $track }}
            - name: PRICECAST_MODEL_VERSION
              value: {{ required (printf "%s.modelVersion is required: the registry version to serve, e.g. --set %s.modelVersion=$(pricecast registry resolve active)." $track $track) $t.modelVersion | quote }}
            {{- if $.Values.s3.existingSecret }}
            - name: PRICECAST_S3_ACCESS_KEY_ID
              valueFrom:
                secretKeyRef:
                  name: {{ $.Values.s3.existingSecret }}
                  key: {{ $.Values.s3.accessKeyIdKey }}
            - name: PRICECAST_S3_SECRET_ACCESS_KEY
              valueFrom:
                secretKeyRef:
                  name: {{ $.Values.s3.existingSecret }}
                  key: {{ $.Values.s3.secretAccessKeyKey }}
            {{- end }}
            {{- if gt (float64 $t.faultInjection.latencyMs) 0.0 }}
            - name: PRICECAST_FAULT_LATENCY_MS
              value: {{ $t.faultInjection.latencyMs | quote }}
            {{- end }}
            {{- if gt (float64 $t.faultInjection.errorRate) 0.0 }}
            - name: PRICECAST_FAULT_ERROR_RATE
              value: {{ $t.faultInjection.errorRate | quote }}
            {{- end }}
            {{- with $.Values.server.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          startupProbe:
            {{- toYaml $.Values.startupProbe | nindent 12 }}
          livenessProbe:
            {{- toYaml $.Values.livenessProbe | nindent 12 }}
          readinessProbe:
            {{- toYaml $.Values.readinessProbe | nindent 12 }}
          {{- if gt (int $.Values.preStopSleepSeconds) 0 }}
          lifecycle:
            preStop:
              exec:
                command: ["sleep", "{{ $.Values.preStopSleepSeconds }}"]
          {{- end }}
          resources:
            {{- toYaml $.Values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $.Values.securityContext | nindent 12 }}
          volumeMounts:
            # The only writable path: metrics of several workers and temporary model downloads.
            - name: tmp
              mountPath: /tmp
            {{- with $.Values.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $.Values.tmpSizeLimit }}
        {{- with $.Values.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      topologySpreadConstraints:
        {{- if $.Values.topologySpreadConstraints }}
        {{- toYaml $.Values.topologySpreadConstraints | nindent 8 }}
        {{- else }}
        # Soft spread: one node going away should not take a whole track with it.
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "pricecast.trackSelectorLabels" (list $ $track) | nindent 14 }}
        {{- end }}
{{- end }}
