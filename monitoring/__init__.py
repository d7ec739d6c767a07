"""Monitoring as code: the Grafana dashboard (monitoring/dashboards) and Prometheus alert rules
(monitoring/alerts, with promtool unit tests). ``python -m monitoring.build`` regenerates the
dashboard JSON and the copies the Helm chart ships."""
