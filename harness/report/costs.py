"""The cost view: what each row of a leaderboard costs to train and serve, next to its score, with
the rows on the Pareto frontier of score against each cost marked (harness.report.pareto)."""

from __future__ import annotations

from harness.report.board import FRONTIER, Board, Cell, Column
from harness.report.cells import averages, by, diverged_note, task_scores
from harness.report.pareto import frontier
from harness.report.results import Results

COSTS = [("trainable_params", "trainable params", "count", "trainable_params"),
         ("trainable_share", "trainable", "share", "trainable_share"),
         ("peak_memory_mb", "peak memory", "megabytes", "peak_memory_mb"),
         ("train_seconds", "train time", "seconds", "train_seconds"),
         ("train_flops", "train compute", "flops", "train_flops"),
         ("train_kwh", "train energy", "kwh", "train_kwh"),
         ("kwh", "cell energy", "kwh", "kwh"),
         ("co2e_grams", "CO2e", "grams", "co2e_grams"),
         ("latency_ms", "latency", "milliseconds", "latency_ms"),
         ("merged_latency_ms", "latency merged", "milliseconds", "merged_latency_ms"),
         ("shipped_bytes", "ships", "bytes", "shipped_bytes")]


def cost_boards(results: Results, task: str | None) -> list[Board]:
    """The cost board over the average score; where some row lacks a task of the others (so has no
    average), or with `task`, one board per task, over that task's cells and score."""
    averaged = averages(task_scores(results, results.pairs(), by("model", "strategy")))
    if task is None and all(c.n for c in averaged):
        return [cost_board(results, None)]
    return [cost_board(results, name) for name in ([task] if task else results.task_names)]


def cost_board(results: Results, task: str | None) -> Board:
    runs = results.runs.assign(co2e_grams=results.runs.kwh.astype(float) * results.carbon_intensity)
    if task is None:
        rows = results.pairs()
        average = Column("average", "average score", "score", averages(task_scores(results, rows, by("model", "strategy"))))
    else:
        runs = runs[runs.task == task]
        rows = [row for row in results.pairs() if ((runs.model == row[0]) & (runs.strategy == row[1])).any()]
        scores = task_scores(results, rows, by("model", "strategy"))[:, results.task_names.index(task)]
        average = Column("score", f"{task} score", "score", averages(scores.reshape(-1, 1)))
    columns = [average]  # no paired tests here: the cost view only needs the scores
    for key, title, kind, field_name in COSTS:
        cells = []
        for model, strategy in rows:
            values = runs[(runs.model == model) & (runs.strategy == strategy)][field_name].dropna()
            cells.append(Cell(mean=float(values.median()), n=1) if len(values) else Cell())
        on = frontier([(c.mean, a.mean) for c, a in zip(cells, average.cells)])
        for cell, marked in zip(cells, on):
            cell.frontier = marked and key != "trainable_share"  # the share is the params column again
        columns.append(Column(key, title, kind, cells))
    trials = results.trials if task is None else results.trials[results.trials.task == task]
    if len(trials):  # a sweep's cost: every trial's train time, over the row's tasks
        spent = trials.groupby(["model", "strategy"]).seconds.sum()
        columns.append(Column("tuning_seconds", "tuning train time", "seconds",
                              [Cell(mean=float(spent[row]), n=1) if row in spent.index else Cell() for row in rows]))
    kinds = {"cuda_max_allocated": "CUDA max allocated", "cpu_peak_rss": "peak resident set (CPU)"}
    memory = ", ".join(sorted({kinds.get(k, str(k)) for k in runs.memory_kind.dropna()})) or "n/a"
    served_on = " | ".join(sorted(set(runs.serving_device.dropna()))) or "the device each cell trained on"
    methods = " | ".join(sorted(set(runs.energy_method.dropna()))) or "not recorded"
    title = f"{results.name}: cost (median over cells)" if task is None else f"{results.name} · {task}: cost"
    return Board(title, ["model", "strategy"], rows, columns,
                 [f"peak memory: {memory}; train time: wall seconds of Trainer.train; train compute: FLOPs counted "
                  f"by torch on training steps; train energy, cell energy: kWh of training and of the whole cell "
                  f"(codecarbon: {methods}); CO2e: grams at {results.carbon_intensity:g} g/kWh (the suite's "
                  f"carbon_intensity); latency: median per example at batch 1 on {served_on}, as trained (an "
                  f"adapter unmerged) and merged into the weights; ships: the bytes "
                  f"save_model writes (beside the public backbone)",
                  f"{FRONTIER}: on the Pareto frontier of {average.title} against that column (no other row scores "
                  f"at least as well for no more)", *diverged_note(results)])
