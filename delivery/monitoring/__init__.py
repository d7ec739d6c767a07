"""Monitoring as code: the Grafana dashboard (``dashboards/``) and Prometheus alert rules
(``alerts/``, with promtool unit tests). ``python -m delivery.monitoring.build`` regenerates the
dashboard JSON and the copies the Helm chart ships."""
