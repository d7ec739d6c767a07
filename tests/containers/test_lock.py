"""requirements.lock pins exactly the runtime dependencies the image installs."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.docker import REPO_ROOT, image_excluded_packages


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[\w.+!-]+", version), f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def _project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def test_every_runtime_dependency_is_pinned_and_satisfies_pyproject() -> None:
    pins = _lock()
    for spec in _project()["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock: run tools/lock.sh"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside pyproject's {req.specifier}: run tools/lock.sh"
        )


def test_the_lock_holds_no_test_only_dependency() -> None:
    pins = _lock()
    runtime = {canonicalize_name(Requirement(s).name) for s in _project()["dependencies"]}
    test_only = {canonicalize_name(Requirement(s).name) for s in _project()["optional-dependencies"]["test"]}
    assert not (test_only - runtime) & set(pins), "test extras leaked into the image lock"


def test_every_package_the_image_leaves_out_is_pinned_in_the_lock() -> None:
    """tools/image-exclude.txt names locked packages only: a stale name would hide a lock change."""
    excluded = {canonicalize_name(name) for name in image_excluded_packages()}
    assert excluded, "tools/image-exclude.txt lists nothing"
    assert not excluded - set(_lock()), f"not in requirements.lock: {sorted(excluded - set(_lock()))}"
    # The runtime half of kfp stays in the image; only its client side is left out.
    assert "kfp" not in excluded and "kfp-pipeline-spec" not in excluded
