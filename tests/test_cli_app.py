"""`mamba-edu app` IS the Streamlit server (exec, not a child): stopping it stops the server.

It used to start Streamlit as a child and not pass signals on: terminate() of the command (the
browser test, a process manager) left a server listening. And the suite's own guard (conftest:
no process a test starts outlives the session) is shown to catch an orphan.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import LEAK_MARKER, marked_processes

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc (Linux)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_terminating_the_app_command_stops_the_server():
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mamba_edu.cli", "app", "--headless", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(240):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                assert proc.poll() is None, f"mamba-edu app exited with {proc.returncode}"
                time.sleep(0.25)
        else:
            pytest.fail("the app did not start within 60 s")
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"streamlit" in cmdline, "the command's own process should be the server (exec)"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _listening(port), f"a server still listens on port {port} after the command was terminated"
    token = os.environ.get(LEAK_MARKER)
    if token:
        assert not [c for c in marked_processes(token).values() if str(port) in c]


def test_the_leak_guard_sees_an_orphan():
    """The session guard would fail on a process left behind, even one whose parent is gone."""
    token = "guard-check-" + str(os.getpid())
    env = {**os.environ, LEAK_MARKER: token}
    # a shell that starts a sleeper in the background and exits: the sleeper is an orphan
    sh = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], env=env, capture_output=True, text=True,
                        timeout=10)
    orphan = int(sh.stdout.strip())
    try:
        found = marked_processes(token)
        assert orphan in found and "sleep" in found[orphan]
    finally:
        os.kill(orphan, 9)
    deadline = time.monotonic() + 5
    while orphan in marked_processes(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert orphan not in marked_processes(token)
