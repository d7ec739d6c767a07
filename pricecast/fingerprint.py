"""What a stage's output depends on, as one digest: its project code and the libraries that shape it.

A checkpoint is reused when its key matches, so the key must change whenever the output could.
Listing a stage's source files by hand missed what they import (train's output depends on the
drift profile, the model I/O and the feature constants), and no key held a library version, so
a new numpy or scikit-learn silently restored results computed by the old one. Here the code
part is the **import closure**: every module of the project packages (:data:`PROJECT_PACKAGES`)
reachable through ``import`` statements from the stage's module, found by walking the source's
``ast`` (imports inside functions too: KFP wrappers import in their bodies), without importing
anything. The library part is the installed version of each :data:`OUTPUT_LIBRARIES` entry the
closure imports.

Not :mod:`modulefinder`: it follows every third-party import too (seconds for pandas and
scikit-learn) and would import-resolve the KFP SDK in every task; the project modules are all
that is hashed, so a walk over their own files is enough and takes milliseconds.

Every task computes its key, so the walk is on every task's start-up path: parsing the closure's
whole source (20 modules, 170 kB) took 35-90 ms per task. Import statements begin a line, so the
walk parses only the lines that begin like one (with their continuation lines), and falls back
to parsing the whole file when such a line is not a complete statement. A docstring line that
reads like an import may add a module: the key then covers more than it needs, never less.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

PROJECT_PACKAGES: frozenset[str] = frozenset({"pricecast", "components"})
# Import name -> distribution, for the libraries whose version can change a stage's numbers or
# files. Infrastructure (fsspec, pydantic, kfp, logging) is left out: it moves bytes, not results.
OUTPUT_LIBRARIES: dict[str, str] = {
    "numpy": "numpy", "pandas": "pandas", "sklearn": "scikit-learn", "pyarrow": "pyarrow",
    "skops": "skops", "scipy": "scipy", "pandera": "pandera",
}
# Libraries a stage uses through another without importing them: pandas reads and writes Parquet
# with pyarrow, skops rebuilds scikit-learn objects, scikit-learn computes with scipy.
IMPLIED_LIBRARIES: dict[str, tuple[str, ...]] = {"pandas": ("pyarrow",), "skops": ("sklearn",), "sklearn": ("scipy",)}
# The directory holding the project packages (the repository root, or site-packages in the image).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _module_file(name: str, root: Path) -> Path | None:
    """The source file of project module ``name`` under ``root``, or None if it is not one."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# The start of a line holding an import statement: `import a`, `from .b import c`, `from . import (`.
_IMPORT_LINE = re.compile(rb"^[ \t]*(?:import[ \t]|from[ \t]+\.*[\w.]*[ \t]+import[ \t(])", re.MULTILINE)


def _import_statements(source: bytes) -> Iterator[bytes]:
    """Each line that begins like an import, with the lines an open bracket or a backslash continues."""
    for match in _IMPORT_LINE.finditer(source):
        start = end = match.start()
        while True:
            newline = source.find(b"\n", end)
            end = len(source) if newline < 0 else newline
            text = source[start:end]
            if newline < 0 or (text.count(b"(") <= text.count(b")") and not text.rstrip().endswith(b"\\")):
                break
            end += 1
        yield source[start:end].strip()


def _import_nodes(source: Path) -> Iterator[ast.Import | ast.ImportFrom]:
    """The file's import statements: from its import lines when they all parse, else the whole file."""
    data = source.read_bytes()
    try:
        nodes = [node for line in _import_statements(data) for node in ast.parse(line).body]
    except SyntaxError:  # e.g. `import a; f(` continued on the next line: parse it all
        nodes = list(ast.walk(ast.parse(data, filename=str(source))))
    return (node for node in nodes if isinstance(node, (ast.Import, ast.ImportFrom)))


def _imported_names(source: Path, module: str) -> set[str]:
    """Dotted names ``source`` imports anywhere in its body (``from a import b`` gives a and a.b)."""
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _import_nodes(source):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        else:
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_closure(start: Iterable[str | Path], root: Path = PROJECT_ROOT) -> tuple[dict[str, Path], set[str]]:
    """The project modules reachable from ``start`` and the top-level third-party names they import.

    Args:
        start: Dotted module names (``components.train.component``) or source file paths.
        root: Where the project packages live.

    Returns:
        ``({module name: file}, {top-level names of other imports})``.
    """
    root = Path(root).resolve()
    modules: dict[str, Path] = {}
    external: set[str] = set()
    todo: list[tuple[str, Path]] = []
    for item in start:
        path = Path(item).resolve() if str(item).endswith(".py") else _module_file(str(item), root)
        if path is None:
            raise ValueError(f"{item!r} is not a module of {', '.join(sorted(PROJECT_PACKAGES))} under {root}.")
        todo.append((_module_name(path, root) if path.is_relative_to(root) else path.stem, path))
    while todo:
        name, path = todo.pop()
        if name in modules:
            continue
        modules[name] = path
        for imported in _imported_names(path, name):
            top = imported.partition(".")[0]
            if top not in PROJECT_PACKAGES:
                external.add(top)
            elif (found := _module_file(imported, root)) is not None:
                todo.append((imported, found))
    return modules, external


@functools.cache
def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def library_versions(imported: Iterable[str]) -> dict[str, str]:
    """``{distribution: version}`` of the :data:`OUTPUT_LIBRARIES` among ``imported`` top-level names
    and the libraries they use (:data:`IMPLIED_LIBRARIES`)."""
    names, todo = set(), list(imported)
    while todo:
        name = todo.pop()
        if name not in names:
            names.add(name)
            todo.extend(IMPLIED_LIBRARIES.get(name, ()))
    return {OUTPUT_LIBRARIES[n]: _version(OUTPUT_LIBRARIES[n]) for n in sorted(names & OUTPUT_LIBRARIES.keys())}


def code_fingerprint(*start: str | Path, root: Path = PROJECT_ROOT) -> str:
    """Digest of the import closure of ``start`` (module names or files) and its output libraries."""
    modules, external = import_closure(start, root)
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode() + b"\0" + modules[name].read_bytes() + b"\0")
    for distribution, version in library_versions(external).items():
        digest.update(f"{distribution}=={version}\0".encode())
    return digest.hexdigest()[:16]


__all__ = ["IMPLIED_LIBRARIES", "OUTPUT_LIBRARIES", "PROJECT_PACKAGES", "code_fingerprint", "import_closure", "library_versions"]
