"""Build-time check of the pricecast image's dependency venv (Dockerfile.base, deps stage).

It replaces ``pip check``, which would only list the packages left out on purpose
(tools/image-exclude.txt), and fails the build unless:

1. every installed distribution's requirements are installed, except the excluded ones, and
   no excluded one is installed;
2. every third-party module the pipeline tasks and the model server import, imports, the way a
   task does (``_KFP_RUNTIME=true``). This also writes their bytecode: uid 1000 cannot write
   ``__pycache__`` into /opt/venv, so modules without it would be recompiled on every container
   start (about 4x slower imports); the rest stays source-only to save space;
3. every shared object in the venv still loads (dlopen) after tools/image-deps.sh stripped it;
4. the native code behind the project's work still computes: BLAS/LAPACK, SciPy, a Ridge fit,
   Parquet with zstd, Arrow compute, a PNG from matplotlib, the C YAML loader, uvloop.

    _KFP_RUNTIME=true /opt/venv/bin/python tools/image-check.py DIR/image-exclude.txt

The project's own modules are checked in the final image by tests/containers/test_image.py.
"""

import ctypes
import importlib
import importlib.metadata as md
import os
import re
import sys
from pathlib import Path

os.environ["_KFP_RUNTIME"] = "true"  # as KFP starts every task; `import kfp` then needs no client

# What components/*, serving/*, cli/* and pricecast/* import from third parties (and what those load
# lazily at run time: s3fs through fsspec, pyarrow.parquet through pandas, uvicorn's loop/http).
MODULES = """
kfp kfp.dsl kfp.dsl.executor_main
numpy pandas scipy scipy.stats pyarrow pyarrow.parquet pyarrow.compute
sklearn.linear_model sklearn.pipeline sklearn.preprocessing skops.io
matplotlib.figure matplotlib.backends.backend_agg
pandera.pandas fsspec s3fs aiobotocore botocore aiohttp
pydantic pydantic_settings typer rich.console rich.table rich.live rich.markdown
tenacity requests yaml orjson
fastapi fastapi.responses starlette uvicorn uvicorn.loops.auto uvicorn.protocols.http.auto
uvicorn.protocols.websockets.auto uvicorn.lifespan.on uvloop httptools watchfiles prometheus_client
""".split()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_requirements(excluded: set[str]) -> list[str]:
    from packaging.requirements import Requirement

    installed = {_norm(d.metadata["Name"]): d for d in md.distributions()}
    problems = [f"{name} is installed but listed in image-exclude.txt" for name in sorted(excluded & set(installed))]
    for name, dist in sorted(installed.items()):
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker and not req.marker.evaluate({"extra": ""}):
                continue  # an extra nobody asked for, or another platform
            dep = _norm(req.name)
            if dep in excluded:
                continue
            if dep not in installed:
                problems.append(f"{name} requires {req}, which is not installed (and not excluded on purpose)")
            elif not req.specifier.contains(installed[dep].version, prereleases=True):
                problems.append(f"{name} requires {req}, but {dep} {installed[dep].version} is installed")
    return problems


def check_imports() -> list[str]:
    problems = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - report every failure, not the first
            problems.append(f"import {name}: {type(exc).__name__}: {exc}")
    return problems


def check_shared_objects(site: Path) -> tuple[int, list[str]]:
    paths = sorted(p for p in site.rglob("*.so*") if p.is_file() and re.search(r"\.so(\.|$)", p.name))
    problems = []
    for path in paths:
        try:
            ctypes.CDLL(str(path))
        except OSError as exc:
            problems.append(f"dlopen {path.relative_to(site)}: {exc}")
    return len(paths), problems


def check_native_code() -> None:
    import io

    import matplotlib
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import scipy.optimize
    import scipy.stats
    import uvloop
    import yaml
    from sklearn.linear_model import Ridge

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from PIL import Image

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(scale=0.01, size=200)
    assert np.allclose(np.linalg.lstsq(x, y, rcond=None)[0], [1, -2, 0.5, 0], atol=0.01)
    assert np.allclose(np.linalg.inv(x.T @ x) @ (x.T @ x), np.eye(4), atol=1e-8)
    assert scipy.optimize.minimize(lambda v: ((v - 3) ** 2).sum(), np.zeros(2)).fun < 1e-8
    assert abs(scipy.stats.norm.ppf(0.975) - 1.959964) < 1e-5 and scipy.stats.ks_2samp(y, y).pvalue == 1.0
    assert Ridge(alpha=1e-6).fit(x, y).score(x, y) > 0.99
    df = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=200), "price": y})
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, compression="zstd")
    assert pd.read_parquet(io.BytesIO(buf.getvalue())).equals(df)
    assert pc.sum(pa.array([1, 2, 3])).as_py() == 6
    fig = Figure()
    fig.add_subplot().plot(y)
    fig.suptitle("price")
    png = io.BytesIO()
    fig.savefig(png, format="png")
    assert Image.open(io.BytesIO(png.getvalue())).size[0] > 100
    assert yaml.load("a: 1", Loader=yaml.CSafeLoader) == {"a": 1}
    assert uvloop.run(_one()) == 1


async def _one() -> int:
    return 1


def main() -> int:
    excluded_file = Path(sys.argv[1])
    excluded = {_norm(line.split("#")[0].strip()) for line in excluded_file.read_text().splitlines()
                if line.split("#")[0].strip()}
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    problems = check_requirements(excluded) + check_imports()
    count, unloadable = check_shared_objects(site)
    problems += unloadable
    if not problems:
        try:
            check_native_code()
        except Exception as exc:  # noqa: BLE001
            problems.append(f"native code: {type(exc).__name__}: {exc!r}")
    for line in problems:
        print(f"image-check: {line}", flush=True)
    if not problems:
        print(f"image-check: ok ({len(MODULES)} modules import, {count} shared objects load, "
              f"{len(excluded)} packages left out on purpose)", flush=True)
    # Shared objects loaded without their module init can crash at interpreter teardown:
    # leave without it.
    os._exit(1 if problems else 0)


if __name__ == "__main__":
    main()
