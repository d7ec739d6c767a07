"""Watching the model and its data: ``thresholds`` (the limits), ``checks`` (a breach becomes an
alert), ``alerts`` (the alert record, sent to the log and a webhook) and ``drift`` (PSI and KS of
the model's inputs). Dashboards and Prometheus alert rules for the server are delivery, not
core: ``delivery/monitoring/``."""
