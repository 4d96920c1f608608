"""Run a notebook in a Jupyter kernel of its own (a separate process), as the tests do.

Kernels talk to us over IPC sockets in a fresh temporary directory, not TCP: TCP ports picked by one
process and bound later by the kernel can be taken in between by another kernel started at the same
time, which stalls the run. The kernel's working directory is chosen by the caller (`cwd`): the
notebooks read shipped files as ../results/..., so it must be a `notebooks/` folder beside a `results/`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path


def kernel_env() -> dict[str, str]:
    """The kernel's environment: ours, plus TRITON_INTERPRET=1 on a machine without an NVIDIA GPU (as the
    Makefile sets it), so that the Triton chapter's kernels run in Triton's interpreter there."""
    env = dict(os.environ)
    if shutil.which("nvidia-smi") is None:
        env.setdefault("TRITON_INTERPRET", "1")
    return env


def sandboxed_kernel_manager(sockets: Path, sandbox: list[str], owner: int | None):
    """A KernelManager whose kernel starts through `python -m mamba_edu.course.sandbox SANDBOX -- <kernel>`,
    with its connection file and sockets under `sockets` (given to user `owner` when not None)."""
    import sys

    from jupyter_client.manager import KernelManager

    class SandboxedKernelManager(KernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            if owner is not None:  # the connection file was just written, readable by us only
                os.chown(self.connection_file, owner, owner)
            return [sys.executable, "-m", "mamba_edu.course.sandbox", *sandbox, "--", *cmd]

    return SandboxedKernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel"),
                                  connection_file=str(Path(sockets) / "kernel.json"))


def notebook_client(nb, cwd: Path, sockets: Path, timeout: int | None, km=None, **options):
    """An nbclient.NotebookClient for `nb` whose kernel starts in `cwd` with its sockets under `sockets`
    (or with the kernel manager `km`)."""
    from jupyter_client.manager import KernelManager

    km = km or KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel"))
    log = logging.getLogger("mamba_edu.course.nbclient")  # timeouts are reported by our callers, not logged
    log.setLevel(logging.CRITICAL)
    return _client_class()(nb, km=km, timeout=timeout, startup_timeout=120, shutdown_kernel="immediate",
                           resources={"metadata": {"path": str(cwd)}}, log=log, **options)


def _client_class():
    """nbclient's NotebookClient, with outputs polled in short slices.

    With a blocking kernel manager (the one that runs every notebook reliably here; the asynchronous one
    stalled widget cells until their time limit on a busy machine), nbclient waits for a cell's next output
    without a time limit, so a cell that loops without printing would hang past every timeout. Polling
    in slices lets the cell's time limit fire.
    """
    import asyncio
    from queue import Empty

    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionComplete

    class SlicedClient(NotebookClient):
        _polling = None  # the cell whose outputs are being read: a poller left by a timed-out cell stops

        async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
            self._polling = parent_msg_id
            while self._polling == parent_msg_id and self.kc is not None:
                try:
                    msg = self.kc.iopub_channel.get_msg(timeout=0.05)
                except Empty:
                    await asyncio.sleep(0.01)  # let the reply (and its time limit) be polled
                    continue
                if msg["parent_header"].get("msg_id") == parent_msg_id:
                    try:
                        self.process_message(msg, cell, cell_index)  # raises CellExecutionComplete when done
                    except CellExecutionComplete:
                        return

    return SlicedClient


def execute(nb, cwd: Path, timeout: int = 600):
    """Execute every cell of `nb` in place (errors raise nbclient's CellExecutionError); returns `nb`."""
    with tempfile.TemporaryDirectory(prefix="mamba-edu-") as sockets:
        notebook_client(nb, cwd, Path(sockets), timeout).execute(cleanup_kc=True, env=kernel_env())  # our km: shut it down too
    return nb
