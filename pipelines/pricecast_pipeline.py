"""The pricecast training pipeline (KFP v2): ingest → shards ×K → train → evaluate → report → promote.

Ingest writes ``shards`` ticker-hash partitions. The per-ticker work fans out over them under
``dsl.ParallelFor``: validate each shard, plan pools their profiles (row counts, dates, one
frequency) into the run's split, then clean and features each shard, which also summarise their
training rows. Train fans in with ``dsl.Collected``: it solves the ridge exactly from the pooled
sufficient statistics, and drift and evaluate read the features one shard at a time, so no task
holds more than one shard's rows. ``shards=1`` runs the same DAG with one iteration per loop.

Components are plain functions in ``components/<stage>/component.py``; this module turns them
into KFP components for a given image (``build_pipeline(image)``), so the same definition
compiles for a cluster (every executor uses the project image, nothing installed at run time)
and runs locally through ``kfp.local``. ``python -m pipelines.pricecast_pipeline`` compiles
``pipelines/pricecast_pipeline.yaml``.
"""


from pathlib import Path
from typing import Any, Callable

from kfp import compiler, dsl

from components.clean.component import clean
from components.drift.component import drift
from components.evaluate.component import evaluate
from components.features.component import features
from components.ingest.component import ingest
from components.plan.component import plan
from components.promote.component import promote
from components.report.component import report
from components.train.component import train
from components.validate.component import validate
from pricecast.monitoring.thresholds import Thresholds

PIPELINE_NAME = "pricecast"
DEFAULT_IMAGE = "pricecast:0.1.0"
# Shards a loop runs at once on a cluster (kfp.local runs tasks one after another anyway). A
# compile-time setting: KFP's ParallelFor takes no pipeline parameter for it.
SHARD_PARALLELISM = 8
COMPILED_PATH = Path(__file__).with_name("pricecast_pipeline.yaml")

# Kubernetes objects the cluster path reads (k8s/pipeline/): credentials from a Secret, the
# store location from a ConfigMap, so neither is baked into the image or the compiled YAML.
S3_SECRET = "pricecast-s3"
S3_SECRET_KEYS = {"access-key-id": "PRICECAST_S3_ACCESS_KEY_ID",
                  "secret-access-key": "PRICECAST_S3_SECRET_ACCESS_KEY"}
CONFIG_MAP = "pricecast-config"
CONFIG_MAP_KEYS = {"store-url": "PRICECAST_STORE_URL", "s3-endpoint-url": "PRICECAST_S3_ENDPOINT_URL"}
ALERTS_SECRET = "pricecast-alerts"  # optional: a webhook URL for drift/threshold alerts
# Alert thresholds default to pricecast.monitoring.thresholds', the ones `pricecast check` uses. KFP
# parameters cannot be null, so a check that Thresholds turns off (None) is 0 here.
LIMITS = Thresholds()


def _op(func: Callable[..., Any], image: str) -> Any:
    """A KFP component from ``func``, run in ``image`` with nothing installed at run time."""
    return dsl.component(func, base_image=image, install_kfp_package=False)


def _on_cluster(task: Any) -> Any:
    """Give a task the store settings and credentials from Kubernetes objects (kfp-kubernetes)."""
    from kfp import kubernetes

    kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env=S3_SECRET_KEYS)
    kubernetes.use_config_map_as_env(task, config_map_name=CONFIG_MAP, config_map_key_to_env=CONFIG_MAP_KEYS)
    kubernetes.use_secret_as_env(task, secret_name=ALERTS_SECRET, optional=True,
                                 secret_key_to_env={"webhook-url": "PRICECAST_ALERT_WEBHOOK_URL"})
    return task


def build_pipeline(image: str = DEFAULT_IMAGE, cluster: bool = True) -> Callable[..., Any]:
    """Build the pipeline function.

    Args:
        image: Container image of every component (the project image from Dockerfile.base).
        cluster: Wire Kubernetes secrets/config maps into the tasks (off for ``kfp.local`` runs).

    Returns:
        A ``@dsl.pipeline`` function, ready to compile or to call under ``kfp.local``.
    """
    ingest_op, validate_op, clean_op = _op(ingest, image), _op(validate, image), _op(clean, image)
    features_op, train_op, evaluate_op = _op(features, image), _op(train, image), _op(evaluate, image)
    report_op, promote_op, drift_op = _op(report, image), _op(promote, image), _op(drift, image)
    plan_op = _op(plan, image)
    k8s = _on_cluster if cluster else (lambda task: task)

    @dsl.pipeline(name=PIPELINE_NAME, description="Train, evaluate and gate a next-period price forecaster.")
    def pricecast_pipeline(
        source: str = "generator",
        source_format: str = "auto",
        date_column: str = "date",
        ticker_column: str = "ticker",
        price_column: str = "price",
        date_format: str = "",
        default_ticker: str = "SERIES",
        encoding: str = "utf-8",
        tickers: int = 20,
        days: int = 756,
        start_date: str = "",
        seed: int = 42,
        shards: int = 1,
        min_rows: int = 100,
        frequency: str = "auto",
        max_gap_days: int = 5,
        outlier_sigma: float = 8.0,
        test_fraction: float = 0.2,
        n_windows: int = 3,
        alpha: float = 1.0,
        main_metric: str = "mape",
        max_degradation: float = 0.1,
        psi_warn: float = LIMITS.psi_warn,
        psi_alert: float = LIMITS.psi_alert,
        min_directional_accuracy: float = LIMITS.min_directional_accuracy or 0.0,
        max_mape: float = LIMITS.max_mape or 0.0,
        report_tickers: str = "",
        require_approval: bool = False,
        store_url: str = "",
        force_from: str = "",
    ):
        """Train a next-period price forecaster and promote it only if it does not degrade.

        Args:
            source: "generator" (seeded GBM data) or a URL/path (http(s)://, s3://, file) of CSV, JSON or Parquet
                (plain or compressed).
            source_format: auto, csv, json or parquet.
            date_column: Source column holding the date.
            ticker_column: Source column holding the ticker; a file without it is one ticker.
            price_column: Source column holding the close price.
            date_format: strptime format of the dates (e.g. "%b %d %Y"); empty infers ISO dates.
            default_ticker: Ticker name for a source without a ticker column.
            encoding: Text encoding of CSV and JSON sources (e.g. latin-1, cp1252).
            tickers: Generator: number of tickers.
            days: Generator: business days per ticker.
            start_date: Generator: first business day (YYYY-MM-DD); empty: the data ends on the last business day.
            seed: Generator: random seed.
            shards: Ticker-hash partitions the per-ticker stages fan out over (1 for small data;
                about one per 3 M rows keeps every task near or under 1 GB).
            min_rows: Validation: fewest rows accepted.
            frequency: Spacing of the prices: auto (detected by validate), business, daily, weekly or monthly.
            max_gap_days: Clean: a longer gap (business days; weekly/monthly data: one period) starts a new segment.
            outlier_sigma: Clean: returns beyond this many robust sigmas are clipped.
            test_fraction: Share of the latest dates held out for evaluation.
            n_windows: Number of consecutive test windows (each scored on its own).
            alpha: Ridge regularisation strength.
            main_metric: Gate metric: mape, mae, rmse or directional_accuracy.
            max_degradation: Largest allowed degradation against the active model (0.1 = 10 %).
            psi_warn: Drift: population stability index that raises a LOW alert.
            psi_alert: Drift: population stability index that raises a MEDIUM alert.
            min_directional_accuracy: Report: HIGH alert when the candidate calls fewer next-day moves right (0 = off).
            max_mape: Report: HIGH alert when the candidate's MAPE, in percent, is higher (0 = off).
            report_tickers: Report: comma-separated tickers to plot (at most 10); empty: the first three.
            require_approval: Mark a passing model pending until `pricecast registry approve`.
            store_url: Model store URL; empty uses PRICECAST_STORE_URL (a ConfigMap on a cluster).
            force_from: Recompute from this stage on, reusing earlier stages' last checkpoints.
        """
        common = {"store_url": store_url, "force_from": force_from}
        ingest_task = k8s(ingest_op(
            source=source, format=source_format, date_column=date_column,
            ticker_column=ticker_column, price_column=price_column, date_format=date_format,
            default_ticker=default_ticker, encoding=encoding, tickers=tickers, days=days,
            start_date=start_date, seed=seed, shards=shards, **common,
        ))
        # Sources flake; on a cluster KFP retries the whole step (a new pod, maybe a new node)
        # on top of the HTTP retries inside it. Locally the in-stage retries are enough, and a
        # KFP retry would only replay a deterministic failure (a bad file) for 90 s.
        if cluster:
            ingest_task.set_retry(num_retries=2, backoff_duration="30s", backoff_factor=2.0)
        # Not cached by KFP: a nightly run must re-read a source whose URL did not change.
        ingest_task.set_caching_options(False)
        ingest_task.set_display_name("ingest")

        # Fan-out 1: validate each shard (its schema, prices, per-ticker history).
        with dsl.ParallelFor(items=ingest_task.outputs["Output"], parallelism=SHARD_PARALLELISM,
                             name="validate-shards") as shard:
            validate_task = k8s(validate_op(raw=ingest_task.outputs["raw"], shard=shard, shards=shards,
                                            min_rows=min_rows, date_format=date_format, frequency=frequency,
                                            test_fraction=test_fraction, n_windows=n_windows, **common))
        # Fan-in: the checks across shards (row count, one frequency) and the run's split, decided
        # once on every shard's dates; the validated shards become one partitioned table.
        plan_task = k8s(plan_op(profiles=dsl.Collected(validate_task.outputs["profile"]),
                                validated=dsl.Collected(validate_task.outputs["validated"]),
                                min_rows=min_rows, frequency=frequency, test_fraction=test_fraction,
                                n_windows=n_windows, **common))
        data_frequency = plan_task.outputs["frequency"]

        # Fan-out 2: clean and features per shard; features also sums up its training rows. The
        # loop items are plan's {shard, frequency} records: kfp.local 2.17 reads loop items only
        # from an output named Output, and inside a loop body it hands an upstream task's output
        # parameter over as the loop item, so the frequency travels in the item.
        with dsl.ParallelFor(items=plan_task.outputs["Output"], parallelism=SHARD_PARALLELISM,
                             name="feature-shards") as item:
            clean_task = k8s(clean_op(validated=plan_task.outputs["validated_shards"], shard=item.shard, shards=shards,
                                      split=plan_task.outputs["split"], max_gap_days=max_gap_days,
                                      outlier_sigma=outlier_sigma, frequency=item.frequency, **common))
            features_task = k8s(features_op(clean=clean_task.outputs["cleaned"], split=plan_task.outputs["split"],
                                            shard=item.shard, shards=shards, frequency=item.frequency, **common))

        def shard_features() -> dsl.Collected:
            """A new Collected per consumer: KFP rewrites one in place when it compiles it."""
            return dsl.Collected(features_task.outputs["features"])

        # Fan-in: the exact ridge fit from the pooled statistics.
        train_task = k8s(train_op(features=shard_features(),
                                  train_stats=dsl.Collected(features_task.outputs["train_stats"]),
                                  outlier_bounds=dsl.Collected(clean_task.outputs["outlier_bounds"]),
                                  split=plan_task.outputs["split"], alpha=alpha, frequency=data_frequency,
                                  **common))
        # Drift of the latest window against the training window, on returns; alerts, never fails.
        drift_task = k8s(drift_op(features=shard_features(), model_info=train_task.outputs["model_info"],
                                  psi_warn=psi_warn, psi_alert=psi_alert, **common))
        # Every test window, scored shard by shard from summed errors. Compares against the
        # registry's active model, which KFP's cache cannot see.
        evaluate_task = k8s(evaluate_op(
            features=shard_features(), model=train_task.outputs["model"],
            model_info=train_task.outputs["model_info"], report_tickers=report_tickers, **common,
        ))
        evaluate_task.set_caching_options(False)
        # Requests below the limits: with limits alone Kubernetes requests 2 CPU / 4G per pod,
        # which a small kind node cannot schedule. A task holds one shard (or streams them), so
        # the limit does not grow with the data. Cluster only: kfp.local ignores them and warns
        # about each on the user's console.
        sized = (validate_task, plan_task, clean_task, features_task, train_task, drift_task, evaluate_task)
        for task in sized if cluster else ():
            task.set_cpu_request("500m").set_memory_request("1Gi").set_memory_limit("4G").set_cpu_limit("2")

        report_task = k8s(report_op(
            window_results=evaluate_task.outputs["window_results"],
            model_info=train_task.outputs["model_info"], drift_report=drift_task.outputs["drift_report"],
            main_metric=main_metric, max_degradation=max_degradation,
            min_directional_accuracy=min_directional_accuracy, max_mape=max_mape,
            # The run's name (kfp.local: its output directory's): each run's report keeps its own folder.
            run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, **common,
        ))
        report_task.set_caching_options(False)

        with dsl.If(report_task.outputs["verdict"] == "promote", name="gate-passed"):
            promote_task = k8s(promote_op(
                model=train_task.outputs["model"], model_info=train_task.outputs["model_info"],
                summary=report_task.outputs["summary"], passed=True,
                require_approval=require_approval, **common,
            ))
            promote_task.set_caching_options(False)
        with dsl.Else(name="gate-failed"):
            reject_task = k8s(promote_op(
                model=train_task.outputs["model"], model_info=train_task.outputs["model_info"],
                summary=report_task.outputs["summary"], passed=False,
                require_approval=require_approval, **common,
            ))
            reject_task.set_caching_options(False)
            reject_task.set_display_name("record-rejection")

    return pricecast_pipeline


def compile_pipeline(path: str | Path = COMPILED_PATH, image: str = DEFAULT_IMAGE) -> Path:
    """Compile the pipeline for ``image`` to ``path`` (YAML that uploads to the KFP UI)."""
    path = Path(path)
    compiler.Compiler().compile(build_pipeline(image, cluster=True), package_path=str(path))
    return path


if __name__ == "__main__":
    print(compile_pipeline())
