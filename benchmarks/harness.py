"""A tiny benchmark harness: machine facts, timing, interleaved contenders, JSON + Markdown results.

Machines we run on are shared and noisy, so contenders are never timed one after the other:
they take turns in rounds (A B C, B C A, C A B, ...) and we report the median rate of each, so
a burst of background load hits all of them alike instead of deciding the winner.

Two ways to interleave:
- ``run_interleaved``: each contender is a callable doing one unit of work (returns how many
  images it processed); every round calls each once.
- ``run_interleaved_workers``: each contender is a long loop that cannot be cut into calls (a
  library's own ``train()``). It runs in its own process and calls ``turn.boundary()`` at
  natural break points (e.g. epoch starts); the parent hands the CPU to one process at a time.
  Separate processes also give each contender its own peak RSS and its own global RNG.
"""
from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPOSITORY = RESULTS_DIR.parent.parent


def portable_paths(value: Any, *, repository: Path = REPOSITORY, temporary: str | None = None) -> Any:
    """``value`` (nested dicts/lists/strings) with no machine's paths: a path inside the repository
    becomes relative to it, a path inside the temporary folder becomes ``<work dir>/...`` without the
    random folder name mkdtemp gave it, so records written on two machines differ only in numbers."""
    temporary = temporary or tempfile.gettempdir()
    if isinstance(value, dict):
        return {key: portable_paths(item, repository=repository, temporary=temporary) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable_paths(item, repository=repository, temporary=temporary) for item in value]
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    path = Path(value)
    if path.is_relative_to(repository):
        return str(path.relative_to(repository))
    if path.is_relative_to(temporary):
        inside = path.relative_to(temporary).parts[1:]  # drop genlab-xyz-<random>
        return str(Path("<work dir>", *inside))
    return value


# ----- machine and results -----
def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, torch and its threads, python, date."""
    import torch

    cpu, flags = platform.processor() or platform.machine(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == (platform.processor() or platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # What decides the speed of bf16 and of the vector kernels: torch's kernel level and the CPU's
        # vector/matrix flags (all of avx*, amx*, fma, f16c, sse4*; the full list is machine noise).
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "sse4"))),
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load,
        "git": git_state(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def git_state(repo: Path = RESULTS_DIR.parent.parent) -> dict[str, Any] | None:
    """The commit measured and the source files that differed from it (others may be editing)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout

    try:
        return {"head": git("rev-parse", "HEAD").strip(),
                "modified_under_src": [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines()]}
    except (OSError, subprocess.SubprocessError):
        return None


def command_line() -> str:
    """The command that produced the results, as it would be typed from the repository root."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    argv = (["python", "-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]] if spec is not None and spec.name
            else ["python", *sys.argv])
    return shlex.join(argv)


def write_results(name: str, results: dict[str, Any], markdown: str, *, machine: dict[str, Any] | None = None,
                  directory: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Write ``<name>.json`` (results + machine + command) and ``<name>.md`` (the tables + a footer)."""
    directory.mkdir(parents=True, exist_ok=True)
    machine = machine or machine_info()
    command = command_line()
    # Where it ran, relative to the repository (".": its root), so records hold no machine's paths.
    cwd = os.path.relpath(os.getcwd(), RESULTS_DIR.parent.parent)
    payload = {"name": name, "command": command, "cwd": cwd, "machine": machine, "results": portable_paths(results)}
    json_path, md_path = directory / f"{name}.json", directory / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path.write_text(markdown.rstrip() + markdown_footer(machine, command))
    return json_path, md_path


def publish(name: str, results: dict[str, Any], markdown: str, *, machine: dict[str, Any]) -> tuple[Path, Path]:
    """``write_results``, then print the Markdown as written and where both files went."""
    json_path, md_path = write_results(name, results, markdown, machine=machine)
    print("\n" + md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    return json_path, md_path


def rerender(json_path: str | Path, render: Callable[[dict[str, Any]], str]) -> Path:
    """Rewrite ``<name>.md`` from ``<name>.json`` (e.g. after changing a report's wording):
    ``render`` gets the saved payload (``results``, ``machine``, ``command``) and returns the tables."""
    json_path = Path(json_path)
    payload = json.loads(json_path.read_text())
    md_path = json_path.with_suffix(".md")
    md_path.write_text(render(payload).rstrip() + markdown_footer(payload["machine"], payload["command"]))
    return md_path


def load_sentence(machine: dict[str, Any]) -> str:
    """"Load average (1/5/15 min) at start: …; at end: … — on N cores" from ``machine_info`` (plus the
    caller's ``load_average_at_end``), for a report's notes: how busy the machine was while it measured."""
    shown = ["/".join(f"{v:.2f}" for v in load) if load else "?"
             for load in (machine.get("load_average_at_start"), machine.get("load_average_at_end"))]
    return f"Load average (1/5/15 min) at start: {shown[0]}; at end: {shown[1]} — on {machine.get('cores')} cores"


def markdown_footer(machine: dict[str, Any], command: str) -> str:
    kernels = ""
    if machine.get("cpu_capability"):
        units = [f for f in machine.get("cpu_flags", []) if f in ("avx512_bf16", "amx_bf16", "amx_tile")]
        kernels = f"torch CPU capability {machine['cpu_capability']}, bf16 units: {', '.join(units) or 'none'}; "
    return (
        f"\n\nMeasured {machine['date']} on {machine['cpu']} ({machine['cores']} cores, {kernels}"
        f"torch {machine['torch']} with {machine['torch_threads']} threads, Python {machine['python']}).  \n"
        f"Command (from the repository root): `{command}`\n"
    )


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line → (key, value); VALUE read as JSON when it is JSON
    (``true``, ``3``, ``"bf16"``), else as the string itself (``bf16``); ``false``/``true`` in any case."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


# ----- timing -----
def time_callable(fn: Callable[[], Any], *, warmup: int = 1, repeats: int = 5) -> dict[str, Any]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; median and all times in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "times_s": times}


def rotated(names: list[str], round_index: int) -> list[str]:
    """A B C → B C A → C A B: nobody always goes first (or always follows the same neighbour)."""
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def summarize(slices: dict[str, list[tuple[int, float]]], baseline: str) -> dict[str, dict[str, Any]]:
    """Per contender: median images/s over its timed slices, whole-run images/s, and ratios vs ``baseline``.

    ``ratio_vs_<baseline>`` = contender rate / baseline rate, so > 1 means faster than the baseline.
    """
    summary: dict[str, dict[str, Any]] = {}
    for name, items in slices.items():
        rates = [images / seconds for images, seconds in items if seconds > 0]
        images, seconds = sum(i for i, _ in items), sum(s for _, s in items)
        summary[name] = {
            "median_images_per_s": statistics.median(rates) if rates else float("nan"),
            "min_images_per_s": min(rates) if rates else float("nan"),
            "max_images_per_s": max(rates) if rates else float("nan"),
            "overall_images_per_s": images / seconds if seconds else float("nan"),
            "images": images,
            "seconds": seconds,
            "slices": [{"images": i, "seconds": s} for i, s in items],
        }
    if baseline in summary:
        for key in ("median_images_per_s", "overall_images_per_s"):
            base = summary[baseline][key]
            for entry in summary.values():
                entry[f"{key.removesuffix('_images_per_s')}_ratio_vs_{baseline}"] = entry[key] / base
    return summary


def run_interleaved(contenders: dict[str, Callable[[], int]], rounds: int, *, warmup: int = 1,
                    baseline: str | None = None) -> dict[str, dict[str, Any]]:
    """Call every contender once per round, in rotated order; each call returns the images it processed."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    slices: dict[str, list[tuple[int, float]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in rotated(names, r):
            start = time.perf_counter()
            images = contenders[name]()
            slices[name].append((images, time.perf_counter() - start))
    return summarize(slices, baseline or names[0])


# ----- interleaving whole loops, one process per contender -----
class Turn:
    """The worker's side: wait for the CPU, report slices of work at boundaries, hand back a result."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.images = 0  # images processed since the current turn began
        self.total_seconds = 0.0
        self._started = 0.0
        self._final_seconds: float | None = None

    def begin(self) -> None:
        """Block until the parent gives this worker its first turn (setup before this is not timed)."""
        self.connection.send(("ready", current_rss_mib()))
        self._wait()

    def add_images(self, n: int) -> None:
        self.images += n

    def boundary(self) -> None:
        """End this turn here: report (images, seconds) and sleep until the next turn."""
        seconds = time.perf_counter() - self._started
        self.total_seconds += seconds
        self.connection.send(("slice", self.images, seconds))
        self.images = 0
        self._wait()

    def end(self) -> None:
        """Stop the clock: the work is done (what follows, e.g. saving weights to score, is not timed)."""
        self._final_seconds = time.perf_counter() - self._started
        self.total_seconds += self._final_seconds

    def finish(self, result: dict[str, Any]) -> None:
        if self._final_seconds is None:
            self.end()
        seconds = self._final_seconds
        result = {**result, "peak_rss_mib": peak_rss_mib(), "timed_seconds": self.total_seconds}
        self.connection.send(("finished", self.images, seconds, result))

    def _wait(self) -> None:
        message = self.connection.recv()
        if message != "go":
            raise SystemExit(f"worker told to stop ({message!r})")
        self._started = time.perf_counter()


def _worker_main(target: Callable[..., dict[str, Any]], kwargs: dict[str, Any], connection: Any,
                 log_path: str | None) -> None:
    if log_path:  # keep the libraries' own progress bars and logs out of the benchmark's output
        with open(log_path, "w") as handle:  # descriptors 1 and 2 become copies that outlive `handle`
            os.dup2(handle.fileno(), 1)
            os.dup2(handle.fileno(), 2)
    turn = Turn(connection)
    try:
        target(turn=turn, **kwargs)
    except BaseException as error:  # report, so the parent does not wait forever
        import traceback

        connection.send(("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))
        raise


def run_interleaved_workers(workers: dict[str, tuple[Callable[..., dict[str, Any]], dict[str, Any]]], *,
                            baseline: str, log_dir: Path | None = None,
                            on_slice: Callable[[str, int, float], None] | None = None) -> dict[str, Any]:
    """Run each ``target(turn=..., **kwargs)`` in its own process, one at a time, in rotating rounds.

    A worker does its untimed setup, calls ``turn.begin()``, then does its work calling
    ``turn.add_images(n)`` and ``turn.boundary()`` at break points, and ends with
    ``turn.finish(result_dict)``. Each turn lasts from the parent's "go" to the worker's next
    boundary, measured inside the worker; every second of the work falls in exactly one turn.
    Returns ``{"slices": {name: [(images, seconds), ...]}, "throughput": summarize(...),
    "results": {name: result}}``.
    """
    context = multiprocessing.get_context("spawn")
    processes, connections = {}, {}
    names = list(workers)
    for name, (target, kwargs) in workers.items():
        parent_end, child_end = context.Pipe()
        log_path = str(log_dir / f"{name.replace(' ', '_')}.log") if log_dir else None
        process = context.Process(target=_worker_main, args=(target, kwargs, child_end, log_path), name=f"bench-{name}")
        process.start()
        processes[name], connections[name] = process, parent_end
    slices: dict[str, list[tuple[int, float]]] = {name: [] for name in names}
    results: dict[str, dict[str, Any]] = {}
    rss_at_start: dict[str, float] = {}
    try:
        for name in names:  # all set up (data loaded, imports done) before anyone is timed
            message = _receive(name, connections[name], processes[name])
            rss_at_start[name] = message[1]
        active = list(names)
        round_index = 0
        while active:
            for name in rotated(active, round_index):
                connections[name].send("go")
                message = _receive(name, connections[name], processes[name])
                images, seconds = message[1], message[2]
                slices[name].append((images, seconds))
                if on_slice:
                    on_slice(name, images, seconds)
                if message[0] == "finished":
                    results[name] = {**message[3], "rss_before_training_mib": rss_at_start[name]}
                    active.remove(name)
            round_index += 1
    finally:
        for process in processes.values():
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
    return {"slices": slices, "throughput": summarize(slices, baseline), "results": results}


def _receive(name: str, connection: Any, process: Any) -> tuple:
    while not connection.poll(1.0):
        if not process.is_alive():
            raise RuntimeError(f"benchmark worker {name!r} died (exit code {process.exitcode}); see its log")
    message = connection.recv()
    if message[0] == "error":
        raise RuntimeError(f"benchmark worker {name!r} failed:\n{message[1]}")
    return message
