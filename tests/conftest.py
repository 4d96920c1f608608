"""Shared test setup: the `gpu` marker skips without CUDA; tolerances per dtype."""

import pytest
import torch

# Tolerances at least as tight as the official mamba-ssm selective-scan tests.
TOL = {
    torch.float32: dict(rtol=6e-4, atol=2e-3),
    torch.bfloat16: dict(rtol=3e-2, atol=5e-2),
    torch.float16: dict(rtol=3e-3, atol=5e-3),
    torch.float64: dict(rtol=1e-9, atol=1e-9),
}


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests use tiny tensors: extra threads only add overhead, and on a busy 2-core machine
    (CI, or a notebook kernel running beside the tests) they can stall small solves for seconds."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
