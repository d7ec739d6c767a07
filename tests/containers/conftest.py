"""Fixtures: a Docker engine (started if need be) and the project image, built once per session."""

from __future__ import annotations

import os

import pytest

from tests.support.docker import build_image, ensure_docker

IMAGE = os.environ.get("PRICECAST_TEST_IMAGE", "pricecast:test")


@pytest.fixture(scope="session")
def docker_ready() -> None:
    reason = ensure_docker()
    if reason:
        print(f"\nDocker tests skipped: {reason}")
        pytest.skip(f"Docker cannot start here: {reason}")


@pytest.fixture(scope="session")
def image(docker_ready: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``pricecast:test`` built from Dockerfile.base; reused when its source-hash label matches."""
    log = tmp_path_factory.mktemp("image") / "build.log"
    build_image(IMAGE, log_path=log)
    return IMAGE
