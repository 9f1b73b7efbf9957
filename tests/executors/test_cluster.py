"""A real two-node Ray cluster on this machine, as users run one: a head started with `ray start
--head`, a second node joined with `ray start --address`, each with its own CPUs and fake GPU
resources, and `harness run SUITE --executor ray --address auto` from a driver outside both.
Cells spread over both nodes; the driver alone writes the store; a node stopped mid-grid loses no
completed record, and its cells are retried on the other node."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.config.suite import expand, load_suite

pytest.importorskip("ray")
pytestmark = pytest.mark.system  # two Ray nodes and a driver, each a process tree of its own: .ci/run runs it
RAY = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _done(store: Path) -> dict[str, str]:
    if not store.exists():
        return {}
    try:
        with sqlite3.connect(store) as db:
            return dict(db.execute("SELECT id, info FROM runs WHERE status = 'done'"))
    except sqlite3.OperationalError:
        return {}


def _nodes(records: dict[str, str]) -> set[str]:
    return {json.loads(info)["ray_node"] for info in records.values()}


@pytest.fixture
def cluster():
    """A head and a second node, each `ray start --block` in its own process group: the test stops one
    node by signalling its group, and nothing else on this machine is touched (no `ray stop`)."""
    port = _free_port()
    # token authentication, as a shared cluster should run: a token of this test's own, in the environment
    # of both nodes and the driver (nothing read from or written to ~/.ray)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}

    def node(*flags: str) -> subprocess.Popen:
        return subprocess.Popen([RAY, "start", "--num-cpus=1", "--num-gpus=1", "--disable-usage-stats", "--block",
                                 *flags], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    address = f"127.0.0.1:{port}"
    head = node("--head", f"--port={port}", "--include-dashboard=false")
    nodes = [head]
    try:
        if _alive(address, env, 1):
            nodes.append(node(f"--address={address}"))
        if len(nodes) < 2 or not _alive(address, env, 2):
            pytest.fail("the two-node Ray cluster did not come up")
        yield nodes[1], env
    finally:
        for process in reversed(nodes):
            _stop(process)
        # what `ray stop` would remove: the file that points later ray.init() calls at this cluster
        current = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()


def _stop(process: subprocess.Popen) -> None:
    """Stop a node: SIGTERM to its process group (Ray's own shutdown), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:  # Ray's own shutdown stops its GCS and raylet; a SIGKILL would leave them running, and a later
        # ray.init() on this machine would find them (on a loaded machine it takes more than 10 s)
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _alive(address: str, env: dict, count: int, seconds: float = 90) -> bool:
    """Whether the cluster at `address` has `count` live nodes within `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address='{address}', log_to_driver=False)"
                                "; print(len([n for n in ray.nodes() if n['Alive']]))"],
                               capture_output=True, text=True, env=env, timeout=60)
        if found.stdout.strip().endswith(str(count)):
            return True
        time.sleep(1)
    return False


def test_a_two_node_cluster_spreads_cells_and_survives_losing_a_node(small_suite, cluster):
    worker, env = cluster
    # 16 cells: a node's first cell waits for its worker process to start and import torch, which on a
    # loaded machine took as long as nine cells on the other node (CI); the grid must outlast that
    path = small_suite(seeds=list(range(16)), train={"epochs": 2, "learning_rate": 2.0e-3, "batch_size": 32,
                                                     "max_length": 48})
    loaded = load_suite(path)
    command = [sys.executable, "-m", "harness", "run", str(path), "--executor", "ray", "--address", "auto",
               "--max-retries", "3"]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and driver.poll() is None and len(_nodes(_done(loaded.store_path))) < 2:
        time.sleep(0.5)  # until each node has finished a cell
    before = _done(loaded.store_path)
    per_node = Counter(json.loads(info)["ray_node"][:8] for info in before.values())
    assert len(per_node) == 2 and len(before) < 16, per_node  # cells spread over both nodes; some still to run
    _stop(worker)  # the second node stops mid-grid
    output = driver.communicate(timeout=600)[0]
    assert driver.returncode == 0, output
    after = _done(loaded.store_path)
    assert set(after) == {s.id for s in expand(loaded)}  # every cell done: the lost node's retried elsewhere
    assert all(after[i] == info for i, info in before.items())  # no completed record lost or rewritten
    assert _nodes(after) == _nodes(before)
    assert f"{len(after)} ran, 0 already done, 0 failed" in output
