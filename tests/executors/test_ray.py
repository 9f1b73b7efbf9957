"""The Ray executor against a real local Ray, and several processes sharing one store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from rich.console import Console

from harness.config.suite import expand, load_suite
from harness.executors.local import run_local
from harness.plan.plan import jobs
from harness.store.database import Store

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.xdist_group("ray")  # one test process runs this module: one local Ray for its tests

QUICK = {"epochs": 1, "learning_rate": 2.0e-3, "batch_size": 32, "max_length": 48}


@pytest.fixture(scope="module")
def local_ray():
    # the workers cannot import this test module: its functions travel by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def comparable(store: Store) -> dict:
    frame = store.frame()
    return {r.id: (r.status, r.model, r.task, r.strategy, r.seed, r.metrics, r.signatures) for r in frame.itertuples()}


def test_ray_gives_the_records_of_the_local_executor(small_suite, tmp_path, local_ray):
    from harness.executors.ray import run_ray

    path = small_suite(strategies={"full": {}, "head_only": {}}, seeds=[0], train=QUICK)
    specs = expand(load_suite(path))
    with Store(tmp_path / "local.sqlite") as local, Store(tmp_path / "ray.sqlite") as remote:
        run_local(jobs(specs), local, Console(quiet=True))
        summary = run_ray(jobs(specs), remote, Console(quiet=True))
        assert len(summary.done) == 2 and not summary.failed
        assert comparable(remote) == comparable(local)
        for spec in specs:  # predictions came back with the records
            assert remote.predictions(spec.id) == local.predictions(spec.id)
        again = run_ray(jobs(specs), remote, Console(quiet=True))
        assert again.skipped == 2 and not again.done


def _dies_once(specs, artifacts):
    """A worker that is killed the first time it runs a job (as a preempted node would be)."""
    marker = os.path.join(artifacts, f"attempted-{specs[0].id}")
    if not os.path.exists(marker):
        os.makedirs(artifacts, exist_ok=True)
        open(marker, "w").close()
        os._exit(1)
    from harness.executors.ray import run_remote

    return run_remote(specs, artifacts)


def _always_dies(specs, artifacts):
    os._exit(1)


def test_a_dead_worker_is_retried_then_recorded_as_failed(small_suite, tmp_path, local_ray):
    from harness.executors import RayOptions
    from harness.executors.ray import run_ray

    specs = expand(load_suite(small_suite(train=QUICK)))
    with Store(tmp_path / "retry.sqlite") as store:
        summary = run_ray(jobs(specs), store, Console(quiet=True), RayOptions(max_retries=1), work=_dies_once)
        assert len(summary.done) == 1, summary
    with Store(tmp_path / "dead.sqlite") as store:
        summary = run_ray(jobs(specs), store, Console(quiet=True), RayOptions(max_retries=1), work=_always_dies)
        assert not summary.done and len(summary.failed) == 1
        assert summary.failed[0][1].startswith("RuntimeError: Ray task failed after 1 retries:")
        assert store.statuses()[specs[0].id][0] == "failed"


def _records(store_path) -> dict[str, tuple[str, int]]:
    if not store_path.exists():
        return {}
    with sqlite3.connect(store_path) as db:
        try:
            return {i: (s, n) for i, s, n in db.execute(
                "SELECT id, status, (SELECT COUNT(*) FROM predictions p WHERE p.run_id = runs.id) FROM runs")}
        except sqlite3.OperationalError:
            return {}


@pytest.mark.system  # two `harness run` processes, each starting a Ray: 78 s of the default run's 386 s
def test_ctrl_c_on_a_ray_run_keeps_every_record_and_a_rerun_resumes(small_suite):
    path = small_suite(seeds=[0, 1, 2], train={**QUICK, "epochs": 2})
    loaded = load_suite(path)
    command = [sys.executable, "-m", "harness", "run", str(path), "--executor", "ray", "--workers", "1"]
    # SIGINT back to its default in the child: a test runner started in the background (or under
    # nohup) ignores it, the child would inherit that, and Python then never raises KeyboardInterrupt
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None and not _records(loaded.store_path):
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output
    assert "run the same command to resume" in output
    kept = _records(loaded.store_path)
    assert 1 <= len(kept) < 3 and all(v == ("done", 1) for v in kept.values())  # whole records only
    with sqlite3.connect(loaded.store_path) as db:
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # nothing left claimed
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{3 - len(kept)} ran, {len(kept)} already done" in rerun.stdout
    assert set(_records(loaded.store_path)) == {s.id for s in expand(loaded)}


# --------------------------------------------------------------------------- sharing one store

def test_claims_keep_two_processes_off_the_same_cell(tmp_path):
    first, second = Store(tmp_path / "s.sqlite"), Store(tmp_path / "s.sqlite")
    second.owner = "elsewhere:1"  # another host: only its heartbeat says whether it is alive
    assert first.claim(["a", "b"]) == {"a", "b"}
    assert second.claim(["a", "b", "c"]) == {"c"}
    assert second.claimed_elsewhere(["a", "b", "c"]) == {"a": first.owner, "b": first.owner}
    first.release(["a"])
    assert second.claim(["a"]) == {"a"}
    # a claim whose heartbeat stopped belongs to a dead process and is taken over
    first.db.execute("UPDATE claims SET heartbeat = heartbeat - 1000 WHERE owner = 'elsewhere:1'")
    assert first.claim(["a", "c"]) == {"a", "c"}
    # on this host, a claim of a process that no longer exists is taken over at once
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    second.owner = f"{first.owner.rpartition(':')[0]}:{dead.stdout.strip()}"
    second.db.execute("UPDATE claims SET owner = ? WHERE id = 'b'", (second.owner,))
    assert first.claim(["b"]) == {"b"}
    first.close()
    second.close()


def test_two_processes_on_one_store_run_each_cell_once(small_suite):
    path = small_suite(seeds=[0, 1, 2, 3], train=QUICK)
    loaded = load_suite(path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "harness", "run", str(path)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    ran = [[line for line in out.splitlines() if line.startswith("✓")] for out in outputs]
    labels = [line.split("  ")[0] for lines in ran for line in lines]
    assert len(labels) == 4 and len(set(labels)) == 4  # every cell ran, none twice
    assert set(_records(loaded.store_path)) == {s.id for s in expand(loaded)}


def test_a_sweep_runs_on_ray_trials_first_then_the_chosen_setting(small_suite, local_ray, capsys):
    from harness.cli.commands import main
    from harness.sweep.grid import grid

    path = small_suite(strategies={"full": {}}, seeds=[0, 1], train=QUICK,
                       sweep={"budget": 2, "spaces": [{"space": {"learning_rate": [1.0e-5, 2.0e-3]}}]})
    assert main(["run", str(path), "--executor", "ray"]) == 0
    out = capsys.readouterr().out
    assert "3 ran" in out and "the sweep chose; 1 more cells" in out
    loaded = load_suite(path)
    with Store(loaded.store_path) as store:
        found = grid(loaded, store)
        assert not found.waiting and store.done([s.id for s in found.reported]) == {s.id for s in found.reported}
