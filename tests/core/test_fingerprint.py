"""Checkpoint keys change with everything that changes a stage's output: imported code, library versions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pricecast import fingerprint
from pricecast.fingerprint import code_fingerprint, import_closure


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_train_key_covers_the_modules_its_output_depends_on() -> None:
    modules, external = import_closure(["components.train.component"])
    # The drift profile, the model I/O and the feature constants all shape model_info/model bytes.
    assert {"pricecast.monitoring.drift", "pricecast.modelio", "pricecast.columns", "pricecast.time_split",
            "pricecast.forecast_metrics", "components.train.core"} <= modules.keys()
    libraries = fingerprint.library_versions(external)
    assert {"numpy", "pandas", "scikit-learn", "skops", "pyarrow"} <= libraries.keys()  # pyarrow: through pandas


def test_a_change_anywhere_in_the_closure_changes_the_key(tmp_path: Path) -> None:
    root = _project(tmp_path, {
        "components/__init__.py": "", "components/stage/__init__.py": "",
        "components/stage/component.py": "def run():\n    from components.stage import core\n",
        "components/stage/core.py": "import numpy\nfrom pricecast.helper import SCALE\n",
        "pricecast/__init__.py": "", "pricecast/helper.py": "from .deeper import X\nSCALE = 1\n",
        "pricecast/deeper.py": "X = 1\n", "pricecast/unrelated.py": "Y = 1\n",
    })
    before = code_fingerprint("components.stage.component", root=root)
    (root / "pricecast/unrelated.py").write_text("Y = 2\n")
    assert code_fingerprint("components.stage.component", root=root) == before  # not imported: no effect
    (root / "pricecast/deeper.py").write_text("X = 2\n")  # two imports away, relative, inside a function
    assert code_fingerprint("components.stage.component", root=root) != before


def test_output_library_versions_are_in_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path, {"components/__init__.py": "", "components/a.py": "import numpy as np\nimport fsspec\n"})
    before = code_fingerprint("components.a", root=root)
    assert fingerprint.library_versions({"numpy", "fsspec"}).keys() == {"numpy"}  # fsspec moves bytes only
    monkeypatch.setattr(fingerprint, "_version", lambda dist: "99.0" if dist == "numpy" else "1")
    assert code_fingerprint("components.a", root=root) != before


def test_an_unknown_start_module_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a module"):
        code_fingerprint("components.nowhere", root=tmp_path)


def _parsed_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_bytes())
    return sorted(ast.dump(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))


def test_the_import_line_scan_finds_what_a_full_parse_finds() -> None:
    # The scan is what keeps the key cheap at every task's start; it must miss nothing.
    files = [p for package in sorted(fingerprint.PROJECT_PACKAGES) for p in (fingerprint.PROJECT_ROOT / package).rglob("*.py")]
    assert len(files) > 50
    for path in files:
        assert sorted(ast.dump(n) for n in fingerprint._import_nodes(path)) == _parsed_imports(path), path


def test_the_scan_reads_continued_imports_and_falls_back_on_odd_lines(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from a import (\n    b,  # a comment\n    c,\n)\nfrom d import e, \\\n    f\n"
        "def g():\n    import h.i as j\n    return j\n"
    )
    assert sorted(ast.dump(n) for n in fingerprint._import_nodes(source)) == _parsed_imports(source)
    source.write_text("import k; print(\n    1)\nimport l\n")  # not a whole statement on its lines
    assert sorted(ast.dump(n) for n in fingerprint._import_nodes(source)) == _parsed_imports(source)
