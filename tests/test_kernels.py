"""`make test` runs the `numerics` tests a second time under other CPU kernels: check that they really are in use."""
import os

import pytest
import torch

pytestmark = pytest.mark.numerics


def test_the_requested_aten_kernels_are_the_ones_in_use():
    # ATEN_CPU_CAPABILITY=default must turn off ATen's AVX2/AVX-512 kernels (the header and the summary line
    # of each run also show the capability and the MKL/oneDNN variables).
    requested = os.environ.get("ATEN_CPU_CAPABILITY", "").upper()
    in_use = torch.backends.cpu.get_cpu_capability()
    assert not requested or in_use == requested, f"ATEN_CPU_CAPABILITY={requested} was asked for, {in_use} is in use"
