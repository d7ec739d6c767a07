"""The pricecast model server: KServe v1 and Open Inference Protocol v2 over the model registry.

``pricecast serve`` runs it; :func:`serving.main.create_app` assembles it. See README.md here.
"""
