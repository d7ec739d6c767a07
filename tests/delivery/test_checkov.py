"""checkov on everything a cluster would receive: zero failed checks, and every skip explained.

Scans the rendered chart (every ci/ scenario; checkov must see manifests, not templates), the
kustomize output of k8s/serving, and Dockerfile.base.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.chart import ROOT, SCENARIOS, scenario_values, write_rendered
from tests.delivery.test_manifests import KUBECTL, K8S_SERVING


def _scan(checkov: Path, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run([str(checkov), "--skip-download", "--output", "json", *args],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.stdout.strip(), done.stderr
    report = json.loads(done.stdout)
    return report if isinstance(report, list) else [report]


@pytest.fixture(scope="module")
def kubernetes_report(checkov: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("rendered")
    for name in SCENARIOS:
        write_rendered(scenario_values(name), root / name)
    plain = subprocess.run([KUBECTL, "kustomize", str(K8S_SERVING)], capture_output=True, text=True, timeout=60, check=True)
    (root / "k8s-serving.yaml").write_text(plain.stdout)
    (report,) = _scan(checkov, "--directory", str(root), "--framework", "kubernetes")
    return report


def test_rendered_manifests_have_no_failed_checks(kubernetes_report: dict[str, Any]) -> None:
    summary = kubernetes_report["summary"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in kubernetes_report["results"]["failed_checks"]]
    assert failed == [] and summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100 and summary["resource_count"] >= 10


def test_every_skip_is_written_in_the_manifest_with_a_reason(kubernetes_report: dict[str, Any]) -> None:
    skipped = kubernetes_report["results"]["skipped_checks"]
    assert skipped, "expected the documented skips (image digest, pull policy, uid, secrets as env)"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 30, (check["check_id"], check["resource"], reason)
    # The skips are decisions about the server image and the test pod, nothing else.
    assert {c["check_id"] for c in skipped} <= {"CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_40", "CKV_K8S_35",
                                                "CKV_K8S_8", "CKV_K8S_9", "CKV2_K8S_6"}


def test_dockerfile_has_no_failed_checks(checkov: Path) -> None:
    dockerfile = ROOT / "Dockerfile.base"
    reports = _scan(checkov, "--file", str(dockerfile), "--framework", "dockerfile")
    failed = [(c["check_id"], c["check_name"]) for r in reports for c in r["results"]["failed_checks"]]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 0
