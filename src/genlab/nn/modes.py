"""Train/eval mode switching that always restores what it found."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def eval_mode(*modules: Any) -> Iterator[None]:
    """Put ``modules`` in eval mode (batch norm uses running statistics, dropout is off) for the
    block, then give each back the mode it had, also when the block raises. Objects without a
    train/eval mode (a duck-typed model in a test, a plain function) are left as they are."""
    switched = [(module, module.training) for module in modules if isinstance(getattr(module, "training", None), bool)]
    for module, _ in switched:
        module.eval()
    try:
        yield
    finally:
        for module, training in switched:
            module.train(training)
