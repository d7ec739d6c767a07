"""KServe's Python ModelServer serving the benchmark's sklearn model (run in KServe's own venv).

The model class is what a KServe user writes: ``load()`` reads the same skops file pricecast
serves, ``predict()`` calls the sklearn pipeline on the v1 ``instances``. Per-request latency
logging is off (a log line per request would only slow KServe down).

    python kserve_server.py --model_path model.skops --http_port 8080
"""

from __future__ import annotations

import argparse
from typing import Any

import kserve
import numpy as np
import skops.io as sio


class PricecastModel(kserve.Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.model: Any = None
        self.load()

    def load(self) -> bool:
        with open(self.path, "rb") as handle:
            data = handle.read()
        self.model = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
        self.ready = True
        return self.ready

    def predict(self, payload: dict, headers: dict | None = None) -> dict:  # noqa: ARG002 - KServe's signature
        rows = np.asarray(payload["instances"], dtype=np.float64)
        return {"predictions": self.model.predict(rows).tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    server = kserve.ModelServer(http_port=args.http_port, workers=1, enable_grpc=False,
                                enable_latency_logging=False)
    server.start([PricecastModel(args.model_name, args.model_path)])
