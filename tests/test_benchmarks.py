"""The parts of the benchmark scripts whose mistakes would skew a published number."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root holds `benchmarks`

from benchmarks.step_profile import CLASSES, classify

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
