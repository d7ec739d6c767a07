from components.features.tests.support import isolated_store, kfp_local  # noqa: F401 - fixtures
