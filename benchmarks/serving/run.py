"""Serving benchmark: pricecast against a bare ASGI ceiling, KServe and MLServer, all in one run.

Each server runs pinned to one core (``taskset -c 0``); ``wrk`` loads it from the other core
(8 connections, one thread) with a single-row predict for ``--duration`` seconds after a
``--warmup``; then with a 256-row batch. Same model, same row for every server; each server's
answer is checked against sklearn's before it is timed. Rounds are interleaved across servers: the
best round per server is reported (other processes on a shared machine only ever slow a run
down), and "x ceiling" is the median over rounds of its ratio to the ceiling's run of the same
round. Start-to-ready is timed from process start to the first successful predict.

    .venv/bin/python benchmarks/serving/run.py   # about 8 minutes (+ KServe and MLServer venvs the first time)
Writes benchmarks/results/serving.json and serving.md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
from servers import REPO, Server, body, contenders, predictions

RESULTS = REPO / "benchmarks" / "results"
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [=[{body}]=]
done = function(s, latency, requests)
  io.write(string.format('RESULT {{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}}\\n',
    s.requests, s.duration, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_model(work: Path) -> tuple[str, Any, list[float], list[list[float]]]:
    """The benchmark model in a registry (for pricecast) and as files (for KServe, MLServer)."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from pricecast import modelio, registry, storage
    from pricecast.columns import FEATURE_COLUMNS

    rng = np.random.default_rng(42)
    x = rng.normal(0.0, 0.01, size=(2000, len(FEATURE_COLUMNS)))
    y = x @ rng.normal(0.0, 0.2, size=len(FEATURE_COLUMNS)) + rng.normal(0.0, 0.002, size=2000)
    model = Pipeline([("scaler", StandardScaler()), ("ridge", Ridge(alpha=1.0))]).fit(x, y)
    data = modelio.dumps(model)
    (work / "model.skops").write_bytes(data)
    joblib.dump(model, work / "model.joblib")
    store_url = f"file://{work}/store"
    store = registry.RegistryStore(store_url)
    artifact = store.put_model("v1", data, {})
    mv = registry.ModelVersion(version="v1", created_at=registry.now_iso(), sha256=storage.sha256_bytes(data),
                               data_hash="0" * 64, artifact=artifact, features=list(FEATURE_COLUMNS),
                               decision="promoted")
    store.update(lambda reg: registry.register(reg, mv))
    row = rng.normal(0.0, 0.01, size=len(FEATURE_COLUMNS)).round(6).tolist()
    batch = rng.normal(0.0, 0.01, size=(256, len(FEATURE_COLUMNS))).round(6).tolist()
    return store_url, model, row, batch


def start(server: Server, probe: bytes, core: int, work: Path,
          timeout: float = 180.0) -> tuple[subprocess.Popen, float]:
    """Start ``server`` pinned to ``core``; return it and the seconds until a predict succeeded."""
    log = (work / f"{server.name.split()[0].lower()}-{time.time_ns()}.log").open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", str(core), *server.command], cwd=server.cwd, stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, **server.env}, start_new_session=True)
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {proc.returncode}; see {log.name}")
        try:
            if httpx.post(server.url, content=probe, timeout=2,
                          headers={"content-type": "application/json"}).status_code == 200:
                return proc, time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{server.name} was not ready within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def wrk(url: str, payload: bytes, seconds: float, connections: int, core: int, work: Path) -> dict[str, Any]:
    script = work / f"wrk-{time.time_ns()}.lua"
    script.write_text(LUA.format(body=payload.decode()))
    out = subprocess.run(["taskset", "-c", str(core), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                          "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 60)
    line = next((line for line in out.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line[len("RESULT "):])
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {"rps": raw["requests"] / (raw["duration_us"] / 1e6), "requests": raw["requests"], "errors": errors,
            "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
            "max_ms": raw["max_us"] / 1000}


def main() -> None:  # noqa: PLR0915 - a linear script reads best top to bottom
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="Seconds of measured load per run.")
    parser.add_argument("--warmup", type=int, default=3, help="Seconds of load before each measured run.")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3,
                        help="Interleaved rounds: the best per server is reported; ratios are per round.")
    parser.add_argument("--starts", type=int, default=3, help="Extra cold starts of pricecast to time.")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pricecast-bench-"))
    store_url, model, row, batch = make_model(work)
    names = ["ceiling", "kserve", "mlserver", "mlserver_grpc", "mlserver_metrics", "pricecast", "pricecast_v2"]
    ports = {name: free_port() for name in names}
    servers = contenders(store_url, work, ports, work / "venv-install.log")
    expected = float(model.predict(np.array([row]))[0])
    load_start = os.getloadavg()
    report: dict[str, dict[str, Any]] = {}
    running: list[tuple[Server, subprocess.Popen]] = []
    try:
        for server in servers:
            probe = body(server.protocol, [row])
            entry = report[server.name] = {"protocol": server.protocol, "unavailable": server.unavailable}
            if server.unavailable:
                print(f"{server.name}: not measured ({server.unavailable})", flush=True)
                continue
            proc, ready_s = start(server, probe, args.server_core, work)
            running.append((server, proc))
            answer = httpx.post(server.url, content=probe, headers={"content-type": "application/json"}).json()
            got = predictions(server.protocol, answer)[0] if "ceiling" not in server.name else expected
            entry.update(start_to_ready_s=ready_s, prediction=got, prediction_matches=abs(got - expected) < 1e-9)
            print(f"{server.name}: ready in {ready_s:.2f}s, prediction {got:.6g} (sklearn {expected:.6g})", flush=True)
        for round_no in range(args.rounds):
            for server, _ in running:
                url = server.url
                for kind, rows in (("single", [row]), ("batch", batch)):
                    payload = body(server.protocol, rows)
                    wrk(url, payload, args.warmup, args.connections, args.load_core, work)
                    result = wrk(url, payload, args.duration, args.connections, args.load_core, work)
                    result["rows_per_s"] = result["rps"] * len(rows)
                    report[server.name].setdefault(kind, []).append(result)
                    print(f"round {round_no + 1} {server.name:28s} {kind:6s} {result['rps']:9.0f} req/s "
                          f"p99 {result['p99_ms']:.2f} ms errors {result['errors']}", flush=True)
    finally:
        for _, proc in running:
            stop(proc)
    pricecast = next(s for s in servers if s.name == "pricecast")
    cold = []
    for _ in range(args.starts):
        proc, ready_s = start(pricecast, body("v1", [row]), args.server_core, work)
        stop(proc)
        cold.append(ready_s)
    report["pricecast"]["start_to_ready_runs_s"] = cold
    write_results(report, args, load_start, args.out)


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return max(runs, key=lambda r: r["rps"])


def write_results(report: dict[str, dict[str, Any]], args: argparse.Namespace, load_start: tuple, out: Path) -> None:
    ceiling_runs = report["bare ASGI ceiling"]["single"]
    rows_md = ["| server | protocol | req/s, 1 row | × ceiling | p50 ms | p99 ms | errors | rows/s, 256-row batch "
               "| start → ready s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, entry in report.items():
        if entry.get("unavailable"):
            rows_md.append(f"| {name} | {entry['protocol']} | not measured: {entry['unavailable']} ||||||| ")
            continue
        single, batch = best(entry["single"]), best(entry["batch"])
        starts = [entry["start_to_ready_s"], *entry.get("start_to_ready_runs_s", [])]
        # Each run against the ceiling run of its own round (seconds apart, same background load),
        # not against the best ceiling run (possibly minutes apart): median of the per-round ratios.
        ratios = [run["rps"] / ref["rps"] for run, ref in zip(entry["single"], ceiling_runs, strict=True)]
        entry["summary"] = {"rps": single["rps"], "vs_ceiling": float(np.median(ratios)), "p50_ms": single["p50_ms"],
                            "p99_ms": single["p99_ms"], "errors": single["errors"] + batch["errors"],
                            "batch_rows_per_s": batch["rows_per_s"], "start_to_ready_s": float(np.median(starts))}
        s = entry["summary"]
        rows_md.append(f"| {name} | {entry['protocol']} | {s['rps']:,.0f} | {s['vs_ceiling']:.2f} | {s['p50_ms']:.2f} "
                       f"| {s['p99_ms']:.2f} | {s['errors']} | {s['batch_rows_per_s']:,.0f} "
                       f"| {s['start_to_ready_s']:.2f} |")
    ours = report["pricecast"]["summary"]
    kserve = report["KServe ModelServer"].get("summary")
    targets = {
        "rps >= 0.5 x ceiling": ours["vs_ceiling"] >= 0.5,
        "p99 <= 2 ms": ours["p99_ms"] <= 2.0,
        "zero errors": ours["errors"] == 0,
        "256-row batch >= 500,000 rows/s": ours["batch_rows_per_s"] >= 500_000,
        "start to ready <= 2 s": ours["start_to_ready_s"] <= 2.0,
        "same prediction as sklearn": all(e.get("prediction_matches", True) for e in report.values()),
    }
    lines = [*rows_md, "", *(f"- {'PASS' if ok else 'FAIL'}: pricecast {what}" for what, ok in targets.items())]
    if kserve:
        lines.append(f"- pricecast serves {ours['rps'] / kserve['rps']:.1f}× KServe's requests/s.")
    load_end = os.getloadavg()
    lines += ["", f"Server pinned to core {args.server_core}, wrk on core {args.load_core} ({args.connections} "
              f"connections, {args.duration:.0f} s after {args.warmup:.0f} s warm-up), best of {args.rounds} "
              "interleaved rounds (× ceiling: median of the per-round ratios); "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}. "
              f"Load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at the end."]
    if max(load_start[0], load_end[0]) > 1.0:
        lines.append("Other processes shared this machine during the run: absolute numbers are below an idle "
                     "machine's; the ratios between servers, measured in the same interleaved rounds, compare.")
    text = "\n".join(lines)
    print("\n" + text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving.md").write_text("# Serving benchmark\n\n" + text + "\n")
    doc = {"settings": vars(args) | {"out": str(args.out)}, "load_average": [load_start, load_end],
           "cpus": os.cpu_count(), "python": platform.python_version(), "targets": targets, "servers": report}
    (out / "serving.json").write_text(json.dumps(doc, indent=2, default=str))


if __name__ == "__main__":
    main()
