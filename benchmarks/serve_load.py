"""A small load test of ``genlab serve``: the real command in its own process, bounded concurrent clients on
127.0.0.1, for a bounded time; errors, response times and the server's memory.

    python -m benchmarks.serve_load --runs runs/families/vae runs/families/cgan

The server starts as ``genlab serve RUNS --port 0 --threads T --quiet`` (its URL read from its first line). Then:
warm-up requests; two rounds of ``--clients`` clients × ``--requests`` requests each, every client cycling
through sample (n = 16), morph (17 frames between two seeds) and edit (pc0) on the runs in turn; the server's
resident memory (``/proc/PID/status`` VmRSS) after each round (growth between the rounds: what a leak would
show; bound ``--rss-bound-mib``); then a burst of ``--burst`` clients at once against a queue of ``--queue``,
which must be answered with 200 or 503 ("busy") only, never hang or fail otherwise. Response times are the
client's wall clock per request (queueing included): p50/p95/max per operation.
Results: benchmarks/results/serve_load.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import harness

OPERATIONS = ("sample", "morph", "edit")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=["runs/families/vae", "runs/families/cgan"])
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients in the two measured rounds")
    parser.add_argument("--requests", type=int, default=30, help="requests per client per round")
    parser.add_argument("--burst", type=int, default=24, help="clients at once in the overload burst (one request each)")
    parser.add_argument("--queue", type=int, default=8, help="the server's --queue")
    parser.add_argument("--threads", type=int, default=2, help="the server's --threads")
    parser.add_argument("--rss-bound-mib", type=float, default=64.0, help="allowed memory growth between the two rounds")
    parser.add_argument("--timeout", type=float, default=600.0, help="the whole test's time bound (seconds)")
    parser.add_argument("--name", default="serve_load")
    return parser.parse_args(argv)


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "genlab", "serve", *args.runs, "--port", "0", "--threads", str(args.threads),
               "--queue", str(args.queue), "--quiet"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    if "http://" not in line:
        server.kill()
        raise SystemExit(f"the server did not start: {line}{server.stderr.read()}")
    return server, line.split("http://", 1)[1].split()[0].rstrip("/")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request(base: str, operation: str, body: dict[str, Any], timeout: float = 120.0) -> tuple[int, float]:
    data = json.dumps(body).encode()
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(f"http://{base}/api/{operation}", data=data), timeout=timeout) as answer:
            answer.read()
            status = answer.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        status = -1  # no answer at all: the worst outcome
    return status, time.perf_counter() - started


def body_for(operation: str, run: str, k: int) -> dict[str, Any]:
    if operation == "sample":
        return {"run": run, "seed": k, "n": 16}
    if operation == "morph":
        return {"run": run, "seeds": [k, k + 1], "frames": 17}
    return {"run": run, "direction": "pc0", "strength": 1.5, "seed": k}


def round_of(base: str, runs: list[str], clients: int, requests: int, offset: int) -> list[tuple[str, int, float]]:
    def client(c: int) -> list[tuple[str, int, float]]:
        done = []
        for i in range(requests):
            k = offset + c * requests + i
            operation, run = OPERATIONS[k % len(OPERATIONS)], runs[(k // len(OPERATIONS)) % len(runs)]
            done.append((operation, *request(base, operation, body_for(operation, run, k))))
        return done

    with ThreadPoolExecutor(clients) as pool:
        return [row for rows in pool.map(client, range(clients)) for row in rows]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def latency_table(rows: list[tuple[str, int, float]]) -> dict[str, dict[str, float]]:
    table = {}
    for operation in OPERATIONS:
        seconds = [s for o, status, s in rows if o == operation and status == 200]
        if seconds:
            table[operation] = {"count": len(seconds), "p50_ms": 1000 * statistics.median(seconds),
                                "p95_ms": 1000 * percentile(seconds, 95), "max_ms": 1000 * max(seconds)}
    return table


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for run in args.runs:
        if not (Path(run) / "config.json").is_file():
            raise SystemExit(f"{run}: no run there; train the families first (python -m benchmarks.families) or pass --runs")
    machine = harness.machine_info()
    started = time.perf_counter()
    server, base = start_server(args)
    try:
        runs = [run["id"] for run in json.loads(urllib.request.urlopen(f"http://{base}/api/runs", timeout=60).read())["runs"]]
        round_of(base, runs, 1, 2 * len(OPERATIONS) * len(runs), 10_000)  # warm-up: every operation on every run
        memory = {"after_warmup_mib": rss_mib(server.pid)}
        rows = []
        for r in range(2):
            round_started = time.perf_counter()
            rows_r = round_of(base, runs, args.clients, args.requests, 1000 * r)
            memory[f"after_round_{r + 1}_mib"] = rss_mib(server.pid)
            memory[f"round_{r + 1}_seconds"] = time.perf_counter() - round_started
            rows += rows_r
            if time.perf_counter() - started > args.timeout:
                raise SystemExit(f"over the {args.timeout:g} s bound after round {r + 1}")
        burst = Counter(status for _, status, _ in round_of(base, runs, args.burst, 1, 50_000))
    finally:
        server.terminate()
        server.wait(timeout=30)
    statuses = Counter(status for _, status, _ in rows)
    growth = memory["after_round_2_mib"] - memory["after_round_1_mib"]
    results = {"settings": vars(args), "statuses": dict(statuses), "burst_statuses": dict(burst), "memory": memory,
               "growth_mib": growth, "growth_within_bound": growth <= args.rss_bound_mib,
               "errors": sum(n for s, n in statuses.items() if s != 200),
               "burst_other_than_200_or_503": sum(n for s, n in burst.items() if s not in (200, 503)),
               "latency": latency_table(rows), "requests_per_second": len(rows) / (memory["round_1_seconds"] + memory["round_2_seconds"]),
               "wall_seconds": time.perf_counter() - started}
    machine["load_average_at_end"] = os.getloadavg()
    results["load"] = harness.load_sentence(machine)  # a busy machine lengthens every response time
    harness.publish(args.name, results, markdown(results), machine=machine)
    if results["errors"] or results["burst_other_than_200_or_503"] or not results["growth_within_bound"]:
        raise SystemExit("the load test failed: see the table")


def markdown(results: dict[str, Any]) -> str:
    s, memory = results["settings"], results["memory"]
    lines = [f"# genlab serve under load: {s['clients']} clients × {s['requests']} requests × 2 rounds",
             "", f"Runs: {', '.join(s['runs'])}; server `--threads {s['threads']} --queue {s['queue']}`; each client cycles "
             "sample (16 images), morph (17 frames) and edit (pc0) over the runs. Times are the client's, queueing included.",
             "", "| operation | requests | p50 (ms) | p95 (ms) | max (ms) |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {op} | {row['count']} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {row['max_ms']:.0f} |"
              for op, row in results["latency"].items()]
    statuses = ", ".join(f"{n} × {status}" for status, n in sorted(results["statuses"].items()))
    burst = ", ".join(f"{n} × {status}" for status, n in sorted(results["burst_statuses"].items()))
    lines += ["", "| measure | value |", "|---|---|",
              f"| answers in the two rounds | {statuses} ({results['errors']} errors) |",
              f"| throughput | {results['requests_per_second']:.1f} requests/s |",
              f"| server memory (VmRSS) after warm-up / round 1 / round 2 | {memory['after_warmup_mib']:.0f} / "
              f"{memory['after_round_1_mib']:.0f} / {memory['after_round_2_mib']:.0f} MiB |",
              f"| memory growth, round 1 → round 2 | {results['growth_mib']:+.1f} MiB (bound {s['rss_bound_mib']:g} MiB: "
              f"{'within' if results['growth_within_bound'] else 'EXCEEDED'}) |",
              f"| burst: {s['burst']} clients at once, queue {s['queue']} | {burst} (200 served, 503 'busy' at once; "
              f"{results['burst_other_than_200_or_503']} other) |",
              "", results["load"] + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
