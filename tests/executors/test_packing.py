"""Cells packed onto GPUs by their memory estimates, on a local Ray with fake GPU resources (the
scheduling is what is tested; the cells train on the CPU): small cells share a GPU and run side by
side, a large one asks for a whole GPU, and a cell that runs out of memory packed is run again alone."""

from __future__ import annotations

import sys
import time

import pytest
from rich.console import Console

from harness.config.suite import expand, load_suite
from harness.executors.ray import memory_share
from harness.plan.plan import jobs
from harness.store.database import Store
from harness.testing import fake_record

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.xdist_group("packing")  # one test process runs this module: one local Ray for its tests
GiB = 2**30


@pytest.fixture(scope="module")
def gpu_ray():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_memory_share():
    assert memory_share(1 * GiB, 80 * GiB) == 1 / 8  # at least an eighth
    assert memory_share(20 * GiB, 80 * GiB) == 3 / 8  # 25 GiB with headroom: three eighths
    assert memory_share(70 * GiB, 80 * GiB) == 1.0  # with headroom, more than the GPU: a whole one
    assert memory_share(20 * GiB, 80 * GiB, context=6 * GiB) == 4 / 8  # each packed process holds a context


def _timed(specs, artifacts):
    """A cell that only records the GPU share it was given and when it ran (no training)."""
    share = ray.get_runtime_context().get_assigned_resources().get("GPU", 0)
    start = time.time()
    time.sleep(1.5)
    return [fake_record(spec, 150, gpus=share, start=start, end=time.time()) for spec in specs]


def _oom_when_packed(specs, artifacts):
    from harness.executors.local import failure

    share = ray.get_runtime_context().get_assigned_resources().get("GPU", 0)
    if share < 1:
        return [failure(spec, RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")) for spec in specs]
    return [fake_record(spec, 150, gpus=share) for spec in specs]


def test_small_cells_share_a_gpu_and_a_large_one_gets_it_whole(small_suite, tmp_path, gpu_ray):
    from harness.executors import RayOptions
    from harness.executors.ray import run_ray

    specs = expand(load_suite(small_suite(seeds=[0, 1, 2, 3, 4])))
    small, large = specs[:4], specs[4]
    estimates = {s.id: 2 * GiB for s in small} | {large.id: 70 * GiB}
    with Store(tmp_path / "s.sqlite") as store:
        summary = run_ray(jobs(specs), store, Console(quiet=True), RayOptions(gpu_memory=80 * GiB),
                          estimates, work=_timed)
        assert len(summary.done) == 5
        info = store.frame().set_index("id")["info"]
    assert [info[s.id]["gpus"] for s in small] == [1 / 8] * 4 and info[large.id]["gpus"] == 1.0
    spans = sorted((info[s.id]["start"], info[s.id]["end"]) for s in small)
    overlapping = max(sum(a < end and start < b for a, b in spans) for start, end in spans)
    assert overlapping >= 2  # packed: small cells ran side by side on the one GPU
    big = (info[large.id]["start"], info[large.id]["end"])
    assert not any(a < big[1] and big[0] < b for a, b in spans)  # the whole GPU: nothing beside it


def test_a_cell_out_of_memory_when_packed_runs_again_alone(small_suite, tmp_path, gpu_ray):
    from harness.executors import RayOptions
    from harness.executors.ray import run_ray

    specs = expand(load_suite(small_suite()))
    with Store(tmp_path / "o.sqlite") as store:
        summary = run_ray(jobs(specs), store, Console(quiet=True), RayOptions(gpu_memory=80 * GiB),
                          {specs[0].id: GiB}, work=_oom_when_packed)
        assert len(summary.done) == 1 and not summary.failed
        assert store.frame()["info"][0]["gpus"] == 1.0


def test_packed_cells_give_the_records_of_one_at_a_time(small_suite, tmp_path, gpu_ray):
    """Real cells (a tiny BERT), packed onto one fake GPU by their estimates (two side by side), against the local
    executor: the same scores and predictions (training is seeded; on a CPU the kernels are
    deterministic)."""
    from harness.base.device import training_device
    from harness.executors import RayOptions
    from harness.executors.local import run_local
    from harness.executors.ray import run_ray
    from harness.plan.plan import make_plan

    path = small_suite(strategies={"full": {}, "lora": {}}, seeds=[0, 1],
                       train={"epochs": 1, "learning_rate": 2.0e-3, "batch_size": 32, "max_length": 48})
    loaded = load_suite(path)
    specs = expand(loaded)
    with Store(tmp_path / "local.sqlite") as local, Store(tmp_path / "packed.sqlite") as packed:
        plan = make_plan(loaded, specs, packed, None, training_device())
        estimates = {c.spec.id: c.memory.peak for c in plan.cells if c.memory}
        assert len(estimates) == 4
        run_local(jobs(specs), local, Console(quiet=True))
        summary = run_ray(jobs(specs), packed, Console(quiet=True), RayOptions(gpu_memory=80 * GiB),
                          estimates)
        assert len(summary.done) == 4
        for spec in specs:
            a, b = (s.frame([spec.id]).iloc[0] for s in (local, packed))
            assert a["metrics"] == b["metrics"] and local.predictions(spec.id) == packed.predictions(spec.id)
