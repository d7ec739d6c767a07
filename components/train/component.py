"""KFP wrapper of the train stage: features in, model bytes and their description out.

KFP copies only this function's source into the container, so every import lives in its body.
"""

from typing import List  # noqa: UP035 - KFP reads typing.List from the signature

from kfp.dsl import Artifact, Dataset, Input, Model, Output


def train(
    features: Input[Dataset],
    outlier_bounds: Input[Artifact],
    split: Input[Artifact],
    model: Output[Model],
    model_info: Output[Artifact],
    alpha: float = 1.0,
    frequency: str = "auto",
    store_url: str = "",
    force_from: str = "",
) -> List[int]:  # noqa: UP006 - KFP recognises typing.List
    """Fit a scaled ridge regression of the next-day log return on a time-ordered split (never shuffled).

    Args:
        features: Parquet from the features stage.
        outlier_bounds: JSON from the clean stage: each ticker's clipping bounds, stored in
            model_info so the server cleans raw prices with the training run's bounds.
        split: JSON from the clean stage: the time-ordered split (training dates, test windows)
            the bounds were estimated under; the model is fitted on its training rows.
        model: The fitted sklearn pipeline as skops bytes (``model.skops``); metadata holds its
            framework, version, sha256, data hash, features and training window.
        model_info: JSON: version, sha256, data hash, features, training window, the split with
            its test windows, in-sample metrics (candidate and naive) and coefficients.
        alpha: Ridge L2 penalty on the standardized features.
        frequency: The data's frequency (validate's output), recorded in model_info; "auto"
            detects it from the features' dates.
        store_url: Model store holding the stage checkpoints (default: PRICECAST_STORE_URL).
        force_from: Stage a resumed run starts from ('' = a normal run using checkpoints).

    Returns:
        The test window indices ``[0, ..., n_windows - 1]`` for the pipeline's ``ParallelFor``.
    """
    import json
    from pathlib import Path

    from components.train import core
    from pricecast import frames
    from pricecast import frequency as freq
    from pricecast.columns import OUTLIER_BOUNDS_KEY
    from pricecast.stage import code_fingerprint, mode_for, run_stage

    def compute(ctx):
        keys = frames.read_frame(features.path, columns=["date", "ticker"])
        spacing = freq.resolve(frequency, keys["ticker"], keys["date"])
        # Not log_return or clipped: the split and the fit need nothing else, and 5 M rows are big.
        features_df = frames.read_frame(features.path, columns=core.training_columns(spacing))
        the_split = core.Split.from_dict(json.loads(Path(split.path).read_text(encoding="utf-8")))
        _, info = core.train_model(features_df, the_split, alpha=alpha, frequency=spacing)
        Path(model.path).write_bytes(info.model_bytes)
        description = info.to_dict()
        description[OUTLIER_BOUNDS_KEY] = json.loads(Path(outlier_bounds.path).read_text(encoding="utf-8"))
        Path(model_info.path).write_text(json.dumps(description, indent=2))
        ctx.record(rows_in=len(features_df), rows_out=info.rows, version=info.version,
                   training_window=info.training_window, **info.metrics)

    run_stage(
        "train",
        params={"alpha": alpha, "frequency": frequency},
        inputs={"features": features.path, "outlier_bounds": outlier_bounds.path, "split": split.path},
        outputs={"model": model.path, "model_info": model_info.path},
        compute=compute,
        code=code_fingerprint("components.train.component"),
        mode=mode_for("train", force_from),
        store_url=store_url or None,
    )
    # From the JSON, not from compute: a restored checkpoint must describe the model the same way.
    info = json.loads(Path(model_info.path).read_text())
    model.metadata.update({
        "framework": info["framework"],
        "version": info["version"],
        "sha256": info["sha256"],
        "data_hash": info["data_hash"],
        "features": info["features"],
        "training_window": info["training_window"],
        "frequency": info.get("frequency", "business"),
        "rows": info["rows"],
        # In-sample fit and the naive baseline on the training rows; test-window metrics come
        # from evaluate/report (KFP Metrics) and are what the gate uses.
        "metrics": info["metrics"],
    })
    model_info.metadata.update({"version": info["version"], "sha256": info["sha256"]})
    return list(range(len(info["split"]["windows"])))
