"""Where tensors live and in what precision: the one device resolver and dtype default.

A leaf module (it imports only torch and dreamer.errors), so every layer may use it: the CLI and
trainer for `--device`, the priors for their `device=` argument, the tiny prior's training.
"""

from __future__ import annotations

import torch

from dreamer.errors import UserError

_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32, "float32": torch.float32,
    "fp16": torch.float16, "float16": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}


def resolve_device(name: str | torch.device | None) -> torch.device:
    """"auto" / None: CUDA when a GPU is available, else CPU; otherwise the named device.

    Asking for CUDA on a machine without it, or for a device torch does not know, is a
    one-line UserError.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is available: use --device cpu or auto")
    try:
        return torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"unknown device {name!r}: use auto, cpu or cuda") from exc


def default_dtype(device: torch.device) -> torch.dtype:
    """The network precision "auto" means: fp16 on CUDA (half the memory, tensor cores), fp32 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.float32


def resolve_dtype(dtype: str | torch.dtype, device: torch.device, what: str = "prior") -> torch.dtype:
    """"auto" -> `default_dtype(device)`; also fp32 / fp16 / bf16 (or their torch names) or a torch.dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return default_dtype(device)
    if dtype not in _DTYPES:
        raise UserError(f"{what}: unknown dtype {dtype!r}: use auto, fp32, fp16 or bf16")
    return _DTYPES[dtype]
