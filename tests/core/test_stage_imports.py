"""The train and drift stages compute without importing scikit-learn, skops or SciPy.

Their imports were most of those tasks' time at the default size (train 2.2 s -> 0.6 s): this
holds the gain. A subprocess, since pytest itself has imported them by now.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from components.clean.core import clean_prices
from components.drift.core import drift_for_model
from components.features.core import build_features
from components.ingest.generator import generate_prices
from components.train.core import train_from_stats
from components.validate.core import validate_frame
from pricecast import modelio
from pricecast.columns import FEATURE_COLUMNS
from pricecast.time_split import time_split
from pricecast.training_stats import shard_stats

raw = generate_prices(4, 300, "2022-01-03", seed=1, drift=0.05, volatility=0.3, ar_coef=0.1)
features = build_features(clean_prices(validate_frame(raw)[0])[0])
split = time_split(features)
fit, info = train_from_stats([shard_stats(features, split, FEATURE_COLUMNS, "business")], split, 1.0, [features])
report = drift_for_model(features, info.to_dict())
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "skops", "scipy", "matplotlib"})
linear = modelio.read_linear(info.model_bytes) is not None
print(json.dumps({"heavy": heavy, "bytes": len(info.model_bytes), "linear": linear,
                  "p": [f.ks_p_value for f in report.features]}))
"""


def test_train_and_drift_run_without_scikit_learn_skops_or_scipy() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["bytes"] > 0 and result["linear"]  # a real model file, readable as the served affine map
    assert all(0.0 <= p <= 1.0 for p in result["p"])
