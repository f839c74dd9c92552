"""dreamer.devices: the one device resolver (this test machine has no CUDA GPU)."""

from __future__ import annotations

import pytest
import torch

from dreamer.devices import default_dtype, resolve_device, resolve_dtype
from dreamer.errors import UserError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")


@no_cuda
@pytest.mark.parametrize("name", ["auto", None])
def test_auto_is_cpu_without_a_gpu(name):
    assert resolve_device(name) == torch.device("cpu")


def test_cpu_and_device_objects():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:1", torch.device("cuda")])
def test_cuda_without_a_gpu_is_a_one_line_user_error(name):
    with pytest.raises(UserError) as info:
        resolve_device(name)
    assert str(info.value) == ("device 'cuda' was asked for but no CUDA GPU is available: "
                               "use --device cpu or auto")


def test_unknown_device_is_a_one_line_user_error():
    with pytest.raises(UserError) as info:
        resolve_device("nonsense")
    assert "nonsense" in str(info.value) and "\n" not in str(info.value)


def test_dtypes():
    cpu = torch.device("cpu")
    assert default_dtype(cpu) == torch.float32
    assert default_dtype(torch.device("cuda")) == torch.float16
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype(torch.float16, cpu) == torch.float16
    with pytest.raises(UserError, match="tiny prior: unknown dtype 'fp8'"):
        resolve_dtype("fp8", cpu, "tiny prior")
