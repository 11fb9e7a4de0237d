"""The parts of the benchmark scripts whose mistakes would skew a published number."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root holds `benchmarks`

from benchmarks.step_profile import CLASSES, classify
from benchmarks.time_to_quality import Curve, _final

HEAVY, ELEMENTWISE, OPTIMIZER, MEMORY, OTHER = CLASSES


@pytest.mark.parametrize(("name", "inside_optimizer", "expected"), [
    ("aten::convolution_backward", False, HEAVY),
    ("aten::_convolution", False, HEAVY),
    ("aten::mkldnn_convolution", False, HEAVY),
    ("aten::addmm", False, HEAVY),
    ("aten::mm", False, HEAVY),
    ("aten::_fused_adam_", False, OPTIMIZER),
    ("Optimizer.step#Adam.step", False, OPTIMIZER),
    ("aten::add_", True, OPTIMIZER),  # the optimizer's own arithmetic is the optimizer's
    ("aten::add_", False, ELEMENTWISE),
    ("aten::threshold_backward", False, ELEMENTWISE),
    ("aten::leaky_relu_backward", False, ELEMENTWISE),
    ("aten::native_batch_norm", False, ELEMENTWISE),
    ("aten::binary_cross_entropy_with_logits", False, ELEMENTWISE),
    ("aten::copy_", False, MEMORY),
    ("aten::_to_copy", False, MEMORY),
    ("aten::index", False, MEMORY),
    ("aten::empty_strided", False, MEMORY),
    ("aten::mmm_unknown", False, OTHER),
    ("autograd::engine::evaluate_function: AddmmBackward0", False, OTHER),
])
def test_step_profile_puts_each_operator_in_its_class(name, inside_optimizer, expected):
    assert classify(name, inside_optimizer) == expected


def test_loop_options_refuses_fp16_on_cpu_and_steps_a_model():
    from benchmarks import loop_options

    with pytest.raises(SystemExit):
        loop_options.parse_args(["--variants", "fp32 NCHW", "fp16 autocast, channels-last"])
    assert "fp16 autocast, channels-last" not in loop_options.parse_args([]).variants  # default runs on any CPU
    run, first = loop_options.make_stepper("vae", "fp32 channels-last (default)", batch_size=8, steps=2)
    assert first > 0 and run() == 16 and run(3) == 24


def test_time_to_quality_reads_its_milestones_off_the_curve():
    """The first curve point at or above 0.8 / 0.9 (not the last, not a rounded-up 0.8995), the best accuracy
    at or before step 1,000, and the run's own final step and seconds."""
    curve = Curve(scorer=None, every=1.0, samples=10)
    curve.points = [[10.0, 200, 0.5, 900.0], [20.0, 900, 0.81, 300.0], [30.0, 1100, 0.8995, 200.0],
                    [40.0, 1500, 0.9, 150.0], [50.0, 1900, 0.95, 120.0]]
    final = _final(curve, model=None, scorer=lambda sample, n, seed: (0.93, 111.0),
                   args=argparse.Namespace(final_samples=10), seconds=55.04, steps=2000)
    assert (final["seconds_to_accuracy_0_8"], final["steps_to_accuracy_0_8"]) == (20.0, 900)
    assert (final["seconds_to_accuracy_0_9"], final["steps_to_accuracy_0_9"]) == (40.0, 1500)
    assert final["best_accuracy_within_1000_steps"] == 0.81
    assert final["final"] == {"seconds": 55.0, "steps": 2000, "label_accuracy": 0.93, "fid": 111.0, "samples": 10}
