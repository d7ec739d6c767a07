from components.features.tests.support import kfp_local  # noqa: F401 - a fixture (isolated_store is the root conftest's)
