"""Benchmark records hold numbers, not this machine's paths."""
from __future__ import annotations

import json
import re
from pathlib import Path

from benchmarks.harness import REPOSITORY, RESULTS_DIR, portable_paths

ABSOLUTE_PATH = re.compile(r'"(/(?:tmp|work|root|home|var|private)/[^"]*)"')


def test_portable_paths_makes_repository_paths_relative_and_drops_temporary_folder_names(tmp_path):
    record = {"run": str(REPOSITORY / "runs" / "vae"), "nested": [{"out_dir": str(tmp_path / "genlab-bench-x1y2" / "round0" / "genlab")}],
              "count": 3, "url": "https://example.invalid/a", "elsewhere": "/opt/data/x.npz"}
    assert portable_paths(record, temporary=str(tmp_path)) == {
        "run": "runs/vae", "nested": [{"out_dir": "<work dir>/round0/genlab"}], "count": 3,
        "url": "https://example.invalid/a", "elsewhere": "/opt/data/x.npz"}


def test_committed_records_hold_no_machine_paths():
    offenders = {path.name: ABSOLUTE_PATH.findall(path.read_text())[:3] for path in sorted(RESULTS_DIR.glob("*.json"))}
    assert {name: found for name, found in offenders.items() if found} == {}
    for path in RESULTS_DIR.glob("*.json"):
        cwd = json.loads(path.read_text()).get("cwd", ".")
        assert not Path(cwd).is_absolute(), path.name
