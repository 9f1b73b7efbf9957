"""`harness run --workers N`: cells in N worker processes on this machine, with the records one
process writes; a failure is recorded and the grid goes on; a dead worker or Ctrl-C loses nothing
already written and gives back the unfinished cells' claims."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest
import torch
from rich.console import Console

from harness.base.errors import HarnessError
from harness.cli.commands import main
from harness.config.suite import expand, load_suite
from harness.executors.pool import run_pool
from harness.plan.plan import jobs
from harness.store.database import Store
from harness.testing import fake_record, write_suite, write_yaml

pytestmark = pytest.mark.xdist_group("pool")


def bad_label_card(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("text,label\n" + "\n".join(["good film,positive", "bad film,negative", "ok film,neutral"] * 10) + "\n")
    return write_yaml(tmp_path / "tasks" / "bad_labels.yaml", {
        "name": "bad_labels", "type": "classification", "source": {"files": {"train": str(data)}},
        "inputs": ["text"], "labels": ["negative", "positive"], "metrics": ["accuracy"], "primary": "accuracy",
        "splits": {"eval": None}})


def test_workers_write_the_records_one_process_writes_and_record_a_failure(small_suite, tmp_path, capsys):
    card = tmp_path / "tasks" / "small_sentiment.yaml"
    path = small_suite(tasks=[str(bad_label_card(tmp_path)), str(card)], seeds=[0, 1],
                       train={"epochs": 1, "learning_rate": 2e-3, "max_train_samples": 64})
    assert main(["run", str(path), "--workers", "2"]) == 1
    out = " ".join(capsys.readouterr().out.split())  # as read, not as wrapped
    assert "in 2 worker processes (1 torch threads each)" in out
    assert "2 ran, 0 already done, 2 failed" in out and "label 'neutral' is not one of" in out
    loaded = load_suite(path)
    with Store(loaded.store_path) as store:
        pooled = store.frame().set_index("id")
        assert sorted(pooled.status) == ["done", "done", "failed", "failed"]
        assert not store.claimed_elsewhere(list(pooled.index))  # no claim is left behind
        done = pooled[pooled.status == "done"]
        assert set(done.environment.map(lambda e: e["device"].endswith(" 1 threads)"))) == {True}
        kept = {i: store.predictions(i) for i in done.index}
    # the same cells in this process, one after another, with the workers' one thread: the same records
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = write_suite(tmp_path / "serial", tasks=[str(card)], seeds=[0, 1],
                             train={"epochs": 1, "learning_rate": 2e-3, "max_train_samples": 64})
        assert main(["run", str(serial)]) == 0
    finally:
        torch.set_num_threads(threads)
    with Store(load_suite(serial).store_path) as store:
        alone = store.frame().set_index("id")
        assert set(alone.index) == set(done.index)
        for i in done.index:
            assert alone.metrics[i] == done.metrics[i] and store.predictions(i) == kept[i]
    assert main(["run", str(path), "--workers", "2"]) == 1  # the failed cells are retried, the done ones are not
    assert "0 ran, 2 already done, 2 failed" in capsys.readouterr().out


def record_or_die(specs, artifacts):
    """A worker's job for the tests: seed 0 shows a progress bar (as a cell's training does) and is
    recorded, seed 1 kills its worker, the rest wait."""
    if specs[0].seed == 0 and os.path.isdir("/dev/shm"):
        from tqdm import tqdm

        before = set(os.listdir("/dev/shm"))
        for _ in tqdm(range(2), file=open(os.devnull, "w")):
            pass
        # a named semaphore made in a worker outlives its kill (the resource tracker warns at exit)
        assert not {n for n in set(os.listdir("/dev/shm")) - before if n.startswith("sem.")}
    if specs[0].seed == 1:
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    if specs[0].seed > 1:
        time.sleep(60)
    return [fake_record(specs[0], correct=8)]


def record_or_wait(specs, artifacts):
    """Seed 0 is recorded at once; the others wait for a minute."""
    if specs[0].seed:
        time.sleep(60)
    return [fake_record(specs[0], correct=8)]


def workers_left() -> list:
    """Live worker processes of this one (multiprocessing's resource tracker and the server workers
    fork from, which live as long as this process, are not workers)."""
    return [p for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != "zombie"
            and not any(name in " ".join(p.cmdline()) for name in ("resource_tracker", "forkserver"))]


def test_a_dead_worker_stops_the_grid_in_one_line_keeping_what_was_written(small_suite):
    loaded = load_suite(small_suite(seeds=[0, 1, 2]))
    specs = expand(loaded)
    with Store(loaded.store_path) as store:
        with pytest.raises(HarnessError) as raised:
            run_pool(jobs(specs), store, Console(quiet=True), 2, work=record_or_die)
        assert "a worker process died (killed, or out of memory)" in str(raised.value)
        assert "run the same command again to resume" in str(raised.value) and "\n" not in str(raised.value)
        assert store.done() == {specs[0].id}
        assert not store.claimed_elsewhere([s.id for s in specs])
        with Store(loaded.store_path) as other:  # another process's view: nothing is held
            assert other.claim([s.id for s in specs[1:]]) == {s.id for s in specs[1:]}
    assert not workers_left()


def test_ctrl_c_stops_the_workers_and_keeps_every_record_written(small_suite):
    loaded = load_suite(small_suite(seeds=[0, 1, 2]))
    specs = expand(loaded)
    with Store(loaded.store_path) as store:
        def interrupt() -> None:  # Ctrl-C once the first record is in (read through a connection of its own)
            with Store(loaded.store_path) as watching:
                while not watching.done():
                    time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=interrupt, daemon=True).start()
        start = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            run_pool(jobs(specs), store, Console(quiet=True), 2, work=record_or_wait)
        assert time.perf_counter() - start < 30  # the waiting workers were stopped, not waited for
        assert store.done() == {specs[0].id}
        with Store(loaded.store_path) as other:
            assert other.claim([s.id for s in specs[1:]]) == {s.id for s in specs[1:]}
    assert not workers_left()


def consent_seen() -> bool:
    from harness.config import consent

    return consent.granted()


def test_a_worker_has_the_consent_of_the_command_that_started_it_not_of_an_earlier_one():
    """Workers fork from a server started once per process: a later command's workers must not carry
    an earlier command's --trust-code (nor lack it)."""
    from harness.config import consent
    from harness.executors.pool import start_pool

    was = consent.granted()
    try:
        for allowed in (True, False, True):
            consent.grant(allowed)
            pool = start_pool(1)
            try:
                assert pool.submit(consent_seen).result(timeout=120) is allowed
            finally:
                pool.stop()
    finally:
        consent.grant(was)
    assert not workers_left()


def test_a_suite_that_does_not_parse_is_refused_before_any_worker_starts(tmp_path, monkeypatch, capsys):
    import harness.executors.pool as pool

    started = []
    monkeypatch.setattr(pool, "start_pool", lambda workers: started.append(workers))
    path = write_yaml(tmp_path / "bad.yaml", {"name": "bad", "models": {"m": "tiny:bert"}, "tasks": ["nope"],
                                              "strategies": {"full": {}}})
    assert main(["run", str(path), "--workers", "2"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().out and not started
