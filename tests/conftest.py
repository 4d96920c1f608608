"""Shared test setup: the `gpu` marker skips without CUDA; tolerances per dtype; no process the
suite starts may outlive it."""

import os
import signal
import time
import uuid

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


# ----------------------------------------------------------------------------------------------
# No process the suite starts may outlive it (a Streamlit server left listening, a kernel, a
# browser). Every process started from here inherits this marker in its environment, orphans
# whose parent was killed too; at the end of the session /proc is searched for it.
# ----------------------------------------------------------------------------------------------

LEAK_MARKER = "MAMBA_EDU_TEST_SESSION"


def marked_processes(token: str) -> dict[int, str]:
    """pid -> command line of every live process (but this one) whose environment holds the marker."""
    found = {}
    needle = f"{LEAK_MARKER}={token}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return {pid: cmd for pid, cmd in found.items() if cmd}  # zombies have no command line


@pytest.fixture(autouse=True, scope="session")
def no_process_outlives_the_suite():
    if not os.path.isdir("/proc/self"):
        yield
        return
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.environ[LEAK_MARKER] = token
    yield
    deadline = time.monotonic() + 15  # kernels and servers being shut down get a moment
    while (left := marked_processes(token)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:  # ours: stop them so the failure does not leak too
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert not left, "processes started by the tests are still running after the suite: " + "; ".join(
        f"{pid}: {cmd[:200]}" for pid, cmd in left.items())
