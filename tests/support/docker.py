"""Docker for tests: make an engine available, and build the project image once per source tree.

On a developer machine Docker is simply there. On machines without a registry (CI here), the
shared tools next to the repository start ``dockerd`` and build a ``python:3.11-slim`` stand-in
offline, so ``Dockerfile.base`` builds unchanged. Tests skip, printing why, only when no engine
can be started at all.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Machine tools that start dockerd and build the base image offline (see scripts/test-prereqs.sh).
SHARED_TOOLS = Path(os.environ.get("PRICECAST_SHARED_TOOLS", REPO_ROOT.parent / "shared" / "tools"))
BASE_IMAGE = "python:3.11-slim"
DOCKERFILE = "Dockerfile.base"
HASH_LABEL = "dev.pricecast.source-hash"


def image_excluded_packages(root: Path = REPO_ROOT) -> list[str]:
    """The locked packages Dockerfile.base leaves out of the image (tools/image-exclude.txt)."""
    lines = (root / "tools" / "image-exclude.txt").read_text().splitlines()
    return [name for name in (line.split("#")[0].strip() for line in lines) if name]


def _ok(*cmd: str, timeout: float = 60) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_docker(base_image: str = BASE_IMAGE) -> str | None:
    """Make ``docker`` answer and ``base_image`` exist; ``None`` when ready, else the reason."""
    if not _ok("docker", "info", timeout=30):
        up = SHARED_TOOLS / "docker-up.sh"
        if up.exists():
            subprocess.run(["bash", str(up)], timeout=300, check=False)
        if not _ok("docker", "info", timeout=30):
            return f"no Docker engine answers `docker info` (tried {up if up.exists() else 'nothing: no docker-up.sh'})"
    if not _ok("docker", "image", "inspect", base_image):
        standin = SHARED_TOOLS / "python-slim-standin.sh"
        if standin.exists() and base_image == BASE_IMAGE:
            subprocess.run(["bash", str(standin)], timeout=900, check=False)
        elif not standin.exists():
            subprocess.run(["docker", "pull", base_image], timeout=900, check=False)
        if not _ok("docker", "image", "inspect", base_image):
            return f"the base image {base_image} is missing and could not be pulled or built"
    return None


def context_files(root: Path = REPO_ROOT) -> list[str]:
    """The files ``docker build`` sends, by the same .dockerignore rules docker uses."""
    from docker.utils.build import exclude_paths

    patterns = [
        line.strip() for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return sorted(p for p in exclude_paths(str(root), patterns, dockerfile=DOCKERFILE) if (root / p).is_file())


def context_hash(root: Path = REPO_ROOT) -> str:
    """sha256 over the Dockerfile and every file of the build context (names and bytes)."""
    digest = hashlib.sha256()
    for rel in [DOCKERFILE, ".dockerignore", *context_files(root)]:
        digest.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def image_label(tag: str, label: str = HASH_LABEL) -> str | None:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', tag],
        capture_output=True, text=True, timeout=60,
    )
    value = out.stdout.strip()
    return value if out.returncode == 0 and value and value != "<no value>" else None


def build_image(tag: str, root: Path = REPO_ROOT, reuse: bool = True, log_path: Path | None = None,
                extra_args: tuple[str, ...] = ()) -> bool:
    """Build ``Dockerfile.base`` as ``tag``; skip when an image of this exact source exists.

    Args:
        tag: Image name and tag.
        root: Build context (the repository).
        reuse: Return at once when ``tag`` carries the current source hash label.
        log_path: Where the build output goes (default: discarded unless the build fails).
        extra_args: More ``docker build`` arguments (e.g. ``--no-cache``).

    Returns:
        True when it built, False when it reused an existing image.

    Raises:
        RuntimeError: the build failed; the message ends with the build log's last lines.
    """
    source_hash = context_hash(root)
    if reuse and image_label(tag) == source_hash:
        return False
    cmd = ["docker", "build", "-f", str(root / DOCKERFILE), "-t", tag,
           "--label", f"{HASH_LABEL}={source_hash}", *extra_args, str(root)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    output = result.stdout + result.stderr
    if log_path:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(output)
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        raise RuntimeError(f"docker build of {tag} failed ({' '.join(cmd)}):\n{tail}")
    return True


def image_size_bytes(tag: str) -> int:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", tag],
                         capture_output=True, text=True, check=True, timeout=60)
    return int(out.stdout.strip())


def docker_run(image: str, *args: str, user: str | None = None, timeout: float = 300,
               extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``docker run --rm`` with the image's entrypoint; output captured as text."""
    cmd = ["docker", "run", "--rm", *(["--user", user] if user else []), *extra, image, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
