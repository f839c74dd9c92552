"""dreamer — text to 3D by score distillation, on any machine.

The public API is small: `generate`, `export`, `evaluate` and the `Result` they return; one generator
for many prompts (`train_amortized`, `generate_amortized`, `amortized_interpolate`) and many prompts
on Ray (`batch`). Heavy
and CUDA-only libraries are imported inside the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"
_LAZY = ("generate", "export", "evaluate", "Result", "train_amortized", "generate_amortized", "amortized_interpolate",
         "batch")
__all__ = [*_LAZY, "UserError", "__version__"]

from dreamer.errors import UserError


def __getattr__(name: str):
    # Lazy: `import dreamer` must not import torch-heavy modules until they are used.
    if name in _LAZY:
        from dreamer import api

        return getattr(api, name)
    raise AttributeError(f"module 'dreamer' has no attribute {name!r}")
