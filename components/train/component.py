"""KFP wrapper of the train stage: features in, model bytes and their description out.

KFP copies only this function's source into the container, so every import lives in its body.
"""

from typing import List  # noqa: UP035 - KFP reads typing.List from the signature

from kfp.dsl import Artifact, Dataset, Input, Model, Output


def train(
    features: Input[List[Dataset]],  # noqa: UP006
    train_stats: Input[List[Artifact]],  # noqa: UP006
    outlier_bounds: Input[List[Artifact]],  # noqa: UP006
    split: Input[Artifact],
    model: Output[Model],
    model_info: Output[Artifact],
    alpha: float = 1.0,
    frequency: str = "auto",
    store_url: str = "",
    force_from: str = "",
):
    """Fit a scaled ridge regression of the next-day log return on a time-ordered split (never shuffled).

    The fan-in of the shards: the fit uses the shards' pooled sufficient statistics (count,
    means, centered scatter of the training rows), which give exactly the single-process ridge
    solution; the in-sample metrics read the features one shard at a time.

    Args:
        features: Parquet of every shard from the features stage.
        train_stats: JSON of every shard from the features stage: its training rows' statistics.
        outlier_bounds: JSON of every shard from the clean stage: each ticker's clipping bounds,
            stored in model_info so the server cleans raw prices with the training run's bounds.
        split: JSON from plan: the time-ordered split (training dates, test windows) the bounds
            were estimated under; the model is fitted on its training rows.
        model: The fitted sklearn pipeline as skops bytes (``model.skops``); metadata holds its
            framework, version, sha256, data hash, features and training window.
        model_info: JSON: version, sha256, data hash, features, training window, the split with
            its test windows, in-sample metrics (candidate and naive) and coefficients.
        alpha: Ridge L2 penalty on the standardized features.
        frequency: The data's frequency (plan's output), recorded in model_info.
        store_url: Model store holding the stage checkpoints (default: PRICECAST_STORE_URL).
        force_from: Stage a resumed run starts from ('' = a normal run using checkpoints).
    """
    import json
    from pathlib import Path

    from pricecast import frames
    from pricecast.columns import OUTLIER_BOUNDS_KEY
    from pricecast.errors import ConfigError
    from pricecast.stage import code_fingerprint, mode_for, run_stage

    def read_json(path):
        return json.loads(Path(path).read_text(encoding="utf-8"))

    def merged_bounds():
        """One bounds document: every shard holds other tickers under the same settings."""
        documents = [read_json(a.path) for a in outlier_bounds]
        settings = {(d.get("outlier_sigma"), d.get("fit_before")) for d in documents}
        if len(settings) > 1:
            raise ConfigError(f"The shards' outlier bounds were fitted under different settings: {sorted(settings)}.",
                              "Clean every shard in the same run (same outlier_sigma and split).")
        tickers = {}
        for document in documents:
            tickers.update(document.get("tickers", {}))
        return {**documents[0], "tickers": tickers}

    # The heavy imports (numpy, pyarrow) are inside compute: a restored task never needs them.
    def compute(ctx):
        from components.train import core
        from pricecast.training_stats import ShardStats

        stats = [ShardStats.from_dict(read_json(a.path)) for a in train_stats]
        the_split = core.Split.from_dict(read_json(split.path))
        columns = core.training_columns(stats[0].frequency if stats else frequency)
        # Not log_return or clipped: the split and the scoring need nothing else.
        # Block by block (the features stage's row groups of whole tickers): a shard of any size
        # never sits in memory whole.
        shards = frames.read_blocks([a.path for a in features], columns=columns)
        _, info = core.train_from_stats(stats, the_split, alpha, shards)
        Path(model.path).write_bytes(info.model_bytes)
        description = info.to_dict()
        description[OUTLIER_BOUNDS_KEY] = merged_bounds()
        Path(model_info.path).write_text(json.dumps(description, indent=2))
        ctx.record(rows_in=sum(s.rows for s in stats), rows_out=info.rows, version=info.version,
                   shards=len(stats), training_window=info.training_window, **info.metrics)

    run_stage(
        "train",
        params={"alpha": alpha, "frequency": frequency},
        inputs={"split": split.path, **{f"{name}-{i}": a.path for name, artifacts in (
            ("features", features), ("train_stats", train_stats), ("outlier_bounds", outlier_bounds))
            for i, a in enumerate(artifacts)}},
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
