import pytest
import torch

from cryomine._device import resolve_device
from cryomine.errors import InputError


def test_cpu_and_auto():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_unknown_device_is_an_input_error():
    with pytest.raises(InputError, match="expected 'auto', 'cpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_an_input_error():
    with pytest.raises(InputError, match="no CUDA device"):
        resolve_device("cuda")
