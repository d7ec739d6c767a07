"""pricecast: train, gate, ship and watch a price-forecasting model.

The shared core lives here: settings, storage, logging, errors, the model registry and the
stage runner. Components, pipelines and the server import it; it imports none of them.
"""

__version__ = "0.1.0"
