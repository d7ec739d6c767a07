"""Model lifecycle: the folded affine map equals sklearn, and nothing unverified is deserialized."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pricecast import modelio, registry, storage
from pricecast.columns import FEATURE_COLUMNS
from pricecast.errors import ModelIntegrityError, ModelNotFoundError
from serving.model import fold_linear_pipeline, load_model
from tests.support.server import model_file, publish_model


def _data(seed: int, n_features: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.001, 0.02, size=(300, n_features)) * rng.uniform(0.1, 50, size=n_features)
    return x, x @ rng.normal(size=n_features) + rng.normal(0, 0.01, size=300)


@pytest.mark.parametrize("estimator", [
    Pipeline([("scaler", StandardScaler()), ("ridge", Ridge(alpha=3.0))]),
    Pipeline([("scaler", StandardScaler(with_mean=False)), ("ridge", Ridge())]),
    Pipeline([("scaler", StandardScaler(with_std=False)), ("ols", LinearRegression())]),
    Pipeline([("a", StandardScaler()), ("b", StandardScaler()), ("ridge", Ridge(alpha=0.1))]),
    Ridge(alpha=0.5),
], ids=["scaler+ridge", "no-mean", "no-std+ols", "two-scalers", "bare-ridge"])
def test_folded_model_predicts_what_the_sklearn_pipeline_predicts(estimator: object) -> None:
    x, y = _data(3)
    estimator.fit(x, y)  # type: ignore[attr-defined]
    fresh, _ = _data(4)
    expected = estimator.predict(fresh)  # type: ignore[attr-defined]
    form = fold_linear_pipeline(estimator)
    np.testing.assert_allclose(fresh @ form.weights + form.intercept, expected, rtol=1e-12, atol=1e-15)
    # The server's fast path reads the same map from the skops bytes without sklearn.
    read = modelio.read_linear(modelio.dumps(estimator))
    assert read is not None
    np.testing.assert_allclose(fresh @ read.weights + read.intercept, expected, rtol=1e-12, atol=1e-15)


def test_the_fast_reader_declines_what_it_does_not_know_and_the_allow_list_decides() -> None:
    from sklearn.linear_model import Lasso
    from sklearn.preprocessing import MinMaxScaler

    x, y = _data(3)
    # skops trusts every sklearn class by default; pricecast's allow-list refuses all but its own.
    for unknown in (Pipeline([("m", MinMaxScaler()), ("r", Ridge())]), Lasso(alpha=0.01),
                    Pipeline([("s", StandardScaler()), ("l", Lasso(alpha=0.01))])):
        data = modelio.dumps(unknown.fit(x, y))
        assert modelio.read_linear(data) is None
        with pytest.raises(ModelIntegrityError, match="not allowed"):
            modelio.loads(data)
    assert modelio.read_linear(b"not a zip") is None
    assert modelio.read_linear(b"PK\x05\x06" + b"\0" * 18) is None  # an empty zip: no schema


def test_the_fast_reader_never_imports_sklearn_or_skops(store_url: str) -> None:
    import subprocess
    import sys

    publish_model(store_url, "v1", seed=5)
    code = ("import sys; from serving.model import load_model; m = load_model(sys.argv[1]); "
            "print(m.loader, any(k.split('.')[0] in ('sklearn', 'skops', 'scipy') for k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, store_url], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["linear", "False"]


def test_loaded_model_matches_the_deserialized_pipeline(store_url: str) -> None:
    publish_model(store_url, "v1", seed=5)
    model = load_model(store_url)
    x, _ = _data(9, n_features=len(FEATURE_COLUMNS))
    assert model.version == "v1" and model.features == tuple(FEATURE_COLUMNS) and model.loader == "linear"
    deserialized = modelio.loads(model_file(store_url, "v1").read_bytes())
    np.testing.assert_allclose(model.predict(x), deserialized.predict(x), rtol=1e-12, atol=1e-15)


def test_a_pinned_version_is_loaded_instead_of_the_active_one(store_url: str) -> None:
    publish_model(store_url, "v1", seed=1)
    publish_model(store_url, "v2", seed=2)
    assert load_model(store_url).version == "v2"
    assert load_model(store_url, "v1").version == "v1"


def test_tampered_bytes_are_refused_by_hash_before_deserializing(store_url: str, monkeypatch) -> None:
    publish_model(store_url, "v1")
    # Bytes that are not even a skops file: had they reached the deserializer, its error would
    # say "not a readable skops file". The hash check must stop them first.
    model_file(store_url, "v1").write_bytes(b"not a model")
    opened: list[str] = []  # every reader of model bytes, watched: none may see unverified bytes
    for name in ("read_linear", "loads"):
        real = getattr(modelio, name)
        monkeypatch.setattr(modelio, name, lambda data, _real=real, _name=name: opened.append(_name) or _real(data))
    with pytest.raises(ModelIntegrityError, match="sha256") as info:
        load_model(store_url)
    assert "readable skops file" not in str(info.value)
    assert opened == []
    # ...and the watch works: a good model goes through the readers.
    publish_model(store_url, "v2")
    load_model(store_url)
    assert opened


def test_a_valid_model_swapped_in_for_another_is_refused(store_url: str) -> None:
    publish_model(store_url, "v1", seed=1)
    other = Pipeline([("s", StandardScaler()), ("r", Ridge())]).fit(*_data(1, len(FEATURE_COLUMNS)))
    model_file(store_url, "v1").write_bytes(modelio.dumps(other))  # loadable, but not v1's bytes
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        load_model(store_url)


def test_missing_bytes_and_unknown_versions_are_not_found(store_url: str) -> None:
    with pytest.raises(ModelNotFoundError, match="no active model"):
        load_model(store_url)
    publish_model(store_url, "v1")
    with pytest.raises(ModelNotFoundError, match="v9"):
        load_model(store_url, "v9")
    model_file(store_url, "v1").unlink()
    with pytest.raises(ModelNotFoundError, match="missing"):
        load_model(store_url)


def test_a_registry_feature_list_that_does_not_fit_the_model_is_refused(store_url: str) -> None:
    mv = publish_model(store_url, "v1", features=["a", "b", "c"])
    wrong = mv.model_copy(update={"version": "v2", "features": ["a", "b"]})
    registry.RegistryStore(store_url).update(lambda reg: registry.register(reg, wrong))
    with pytest.raises(ModelIntegrityError, match="takes 3 inputs"):
        load_model(store_url, "v2")


def test_tampered_metadata_is_refused_by_hash_and_nothing_is_served(store_url: str) -> None:
    """metadata.json (the outlier bounds and drift profile the server uses) is verified like the bytes."""
    publish_model(store_url, "v1", metadata={"outlier_bounds": {"AAA": [-0.1, 0.1]}})
    loaded = load_model(store_url)
    assert loaded.metadata is not None and loaded.metadata["outlier_bounds"] == {"AAA": [-0.1, 0.1]}
    path = storage.local_path(registry.RegistryStore(store_url).metadata_url("v1"))
    path.write_text(path.read_text().replace("0.1", "9.9"))  # wider bounds: raw spikes would pass unclipped
    with pytest.raises(ModelIntegrityError, match="Metadata of v1 .* refusing to use it"):
        load_model(store_url)
