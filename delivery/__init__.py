"""Delivery assets kept as code: ``monitoring/`` (the dashboards and alert rules the Helm chart
ships). Not part of the installed package: nothing in pricecast imports it."""
