"""Completed runs as one tidy table, from a suite and its store, a whole store, or an exported file.

Every report (leaderboards, statistics, plots, compare / check) reads a `Results`; none of them
touches SQLite or suite files directly. Exported JSON holds the same rows (and, optionally, the
per-example predictions), so a baseline can be kept in a repository and checked against in CI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from harness.base.device import CPU_COMPUTE
from harness.base.errors import HarnessError
from harness.base.files import write_output
from harness.config.schemas import CARBON_INTENSITY
from harness.report.tuning import curves
from harness.sweep.selection import Choice, TrialScore, choose, trial_scores
from harness.sweep.space import key_of

COLUMNS = ["run_id", "model", "strategy", "task", "seed", "primary", "score", "task_score", "metrics",
           "trainable_params", "total_params", "trainable_share", "peak_memory_mb", "memory_kind", "train_seconds",
           "latency_ms", "merged_latency_ms", "shipped_bytes", "train_flops", "train_kwh", "kwh", "energy_method", "serving_device",
           "selected_on", "reported_on", "environment", "compute", "report_time_metrics", "retention"]
# What of a run's environment can change its result: what `harness compare` holds side by side.
ENVIRONMENT_KEYS = ("device", "python", "torch", "transformers", "peft")
# A sweep's trial runs (harness.sweep.selection.TrialScore), one row each: what tuning reports read.
TRIAL_COLUMNS = ["run_id", "model", "strategy", "task", "point", "setting", "seed", "seeds", "settings", "order",
                 "dev", "eval", "seconds", "epochs", "pruned", "planned_epochs", "compute"]
EXPORT_VERSION = 1


@dataclass
class Results:
    runs: pd.DataFrame  # one row per completed run, COLUMNS
    tasks: dict[str, dict[str, Any]]  # task -> {"primary": name, "average": [names], "metrics": [names]}
    name: str = "results"
    _predictions: dict[str, tuple[list, list]] = field(default_factory=dict, repr=False)
    _store: Any = field(default=None, repr=False)
    histories: dict[str, list[dict]] = field(default_factory=dict, repr=False)  # run id -> Trainer log
    order: dict[str, list[str]] = field(default_factory=dict)  # "model" / "strategy" -> the suite's order
    planned: set[tuple[str, str]] | None = None  # (model, strategy) pairs the suite's grid holds; None: all
    trials: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TRIAL_COLUMNS))
    # runs whose training diverged (a non-finite loss, gradient norm or weight): kept out of `runs`, so
    # out of every mean, and listed by the reports: {run_id, model, strategy, task, seed, step, signal}
    diverged: list[dict] = field(default_factory=list)
    carbon_intensity: float = CARBON_INTENSITY  # grams CO2e per kWh: the suite's `carbon_intensity`
    # task -> (eval examples that overlap train, eval examples): harness.tasks.overlap, from the suite's cards
    overlaps: dict[str, tuple[int, int]] = field(default_factory=dict)
    # run id -> device -> serving cost measured there again (harness measure; Store.measurements)
    measurements: dict[str, dict[str, dict]] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ views

    def measured_on(self, device: str) -> Results:
        """A copy whose latency is the one measured on `device` (a device name, or a part of exactly
        one): a run's record where it trained there, else what `harness measure` kept; a run
        measured on neither has none."""
        runs = self.runs.copy()
        known = sorted({d for d in runs.serving_device.dropna()} | {d for m in self.measurements.values() for d in m})
        matches = [d for d in known if d == device] or [d for d in known if device.lower() in d.lower()]
        if len(matches) != 1:
            said = "names more than one" if matches else "is not"
            raise HarnessError(f"--measured-on {device!r} {said} a device these runs were measured on "
                               f"({', '.join(known) or 'none'})")
        (device,) = matches
        for i, row in runs.iterrows():
            if row.serving_device != device:
                kept = self.measurements.get(row.run_id, {}).get(device)
                shown = served({"serving": kept}) if kept else {k: None for k in ("latency_ms", "merged_latency_ms")}
                runs.loc[i, ["latency_ms", "merged_latency_ms", "serving_device"]] = [
                    shown["latency_ms"], shown["merged_latency_ms"], device if kept else None]
        return replace(self, runs=runs)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_suite(cls, loaded, specs, store, trials=()) -> Results:
        """The runs of a suite's current plan, labelled as the suite labels them now; `trials`: its
        sweep's trial specs (sweep.grid gives both)."""
        by_id = {s.id: s for s in specs}
        frame = store.frame(list(by_id))
        labels = {i: (s.model, s.strategy, s.task, s.seed) for i, s in by_id.items()}
        cards = {name: card.model_dump(mode="json") for name, card in loaded.cards.items()}
        results = cls._build(frame, labels, cards, loaded.name, store)
        results.measurements = store.measurements(list(by_id))
        results.overlaps = _overlaps(loaded.cards)
        results.carbon_intensity = loaded.suite.carbon_intensity
        results.planned = {(s.model, s.strategy) for s in specs}  # pairs a suite's `exclude` removed are not rows
        results.order = {"model": [m for m in loaded.suite.models if any(m == p[0] for p in results.planned)],
                         "strategy": list(dict.fromkeys(s.strategy for s in specs))}
        if trials:
            primaries = {name: card.primary for name, card in loaded.cards.items()}
            labels = {s.id: (s.model, s.strategy, s.task) for s in trials}
            results.trials = _trial_frame(trial_scores(store.frame(list(labels)), primaries, labels))
        return results

    @classmethod
    def from_store(cls, store, suite: str | None = None) -> Results:
        """Every completed run in a store (of one suite if named), labelled as when it ran."""
        frame = store.frame()
        if suite is not None:
            frame = frame[frame.suite == suite]
        cards = {r.task: r.spec["card"] for r in frame.itertuples()}
        scores = trial_scores(frame, {task: card["primary"] for task, card in cards.items()})
        chosen = choose(scores)

        def reported(record) -> bool:  # not a sweep's, or its group's choice on a suite seed
            sweep = record.spec.get("sweep")
            choice = chosen.get((record.model, record.task, record.strategy))
            return not sweep or (choice is not None and key_of(sweep["point"]) == choice.point
                                 and record.seed in sweep["finals"])

        trials = _trial_frame(scores)
        frame = frame[[reported(r) for r in frame.itertuples()]] if len(frame) else frame
        labels = {r.id: (r.model, r.strategy, r.task, r.seed) for r in frame.itertuples()}
        results = cls._build(frame, labels, cards, suite or Path(store.path).stem, store)
        results.trials = trials
        return results

    @classmethod
    def from_json(cls, path: str | Path) -> Results:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            runs = pd.DataFrame(data["runs"], columns=COLUMNS)
            runs["compute"] = [c if isinstance(c, dict) else dict(CPU_COMPUTE) for c in runs["compute"]]
            runs["report_time_metrics"] = [c if isinstance(c, list) else [] for c in runs["report_time_metrics"]]
            predictions = {k: (v[0], v[1]) for k, v in data.get("predictions", {}).items()}
            trials = pd.DataFrame(data.get("trials", []), columns=TRIAL_COLUMNS)
            return cls(runs, data["tasks"], data.get("name", Path(path).stem), predictions, trials=trials,
                       diverged=list(data.get("diverged", [])),
                       carbon_intensity=float(data.get("carbon_intensity", CARBON_INTENSITY)))
        except (OSError, ValueError, KeyError) as exc:
            raise HarnessError(f"{path}: not a harness results file ({exc})") from None

    @classmethod
    def _build(cls, frame: pd.DataFrame, labels: dict, cards: dict, name: str, store) -> Results:
        tasks = {t: {"primary": c["primary"], "average": c.get("average") or [c["primary"]], "metrics": c["metrics"]}
                 for t, c in cards.items()}
        rows, histories, diverged = [], {}, []
        done = frame[frame.status == "done"]
        if store is not None and len(done):
            done = _fill_metrics(done, {t: c["metrics"] for t, c in cards.items()},
                                 {i: label[2] for i, label in labels.items()}, store)
        for record in done.itertuples():
            model, strategy, task, seed = labels[record.id]
            info, cost, metrics = record.info, record.cost, record.metrics
            if info.get("diverged"):
                diverged.append({"run_id": record.id, "model": model, "strategy": strategy, "task": task, "seed": seed,
                                 "step": info["diverged"].get("step"), "signal": info["diverged"].get("signal")})
                continue
            rows.append({
                "run_id": record.id, "model": model, "strategy": strategy, "task": task, "seed": seed,
                "primary": tasks[task]["primary"], "score": metrics[tasks[task]["primary"]],
                "task_score": sum(metrics[m] for m in tasks[task]["average"]) / len(tasks[task]["average"]),
                "metrics": metrics, "trainable_params": cost.get("trainable_params"),
                "total_params": cost.get("total_params"), "trainable_share": cost.get("trainable_share"),
                "peak_memory_mb": cost.get("peak_memory_mb"), "memory_kind": cost.get("memory_kind"),
                "train_seconds": cost.get("seconds", {}).get("train"),
                **served(cost),
                "selected_on": info.get("selected_on"), "reported_on": info.get("reported_on"),
                "environment": _environment(record.environment),
                "compute": record.spec.get("compute") or dict(CPU_COMPUTE),  # records from before it: CPU fp32
                "report_time_metrics": info.get("report_time_metrics", []),
                "retention": info.get("retention"),  # forgetting (harness.run.retention), when the suite measured it
            })
            histories[record.id] = info.get("log_history", [])
        return cls(pd.DataFrame(rows, columns=COLUMNS), tasks, name, _store=store, histories=histories,
                   diverged=diverged)

    # ------------------------------------------------------------------ access

    @property
    def models(self) -> list[str]:
        return self.order.get("model") or list(dict.fromkeys(self.runs.model))

    @property
    def strategies(self) -> list[str]:
        return self.order.get("strategy") or list(dict.fromkeys(self.runs.strategy))

    def pairs(self, model: str | None = None, strategy: str | None = None) -> list[tuple[str, str]]:
        """(model, strategy) rows in order, only those the grid holds, optionally for one model or strategy."""
        return [(m, s) for m in self.models for s in self.strategies
                if (self.planned is None or (m, s) in self.planned)
                and model in (None, m) and strategy in (None, s)]

    @property
    def task_names(self) -> list[str]:
        return [t for t in self.tasks if t in set(self.runs.task)] or list(self.tasks)

    def trial_scores(self) -> list[TrialScore]:
        return [TrialScore(r.run_id, (r.model, r.task, r.strategy), r.point, r.setting, int(r.seed), tuple(r.seeds),
                           int(r.settings), int(r.order), float(r.dev), float(r.eval), float(r.seconds),
                           _given(r.epochs, 0.0), r.pruned is True or r.pruned == 1, _given(r.planned_epochs, 0.0),
                           _given(r.compute, None))
                for r in self.trials.itertuples()]  # files exported before pruning lack the last four

    def choices(self) -> dict[tuple[str, str, str], Choice]:
        """{(model, task, strategy): the setting its sweep chose} (harness.sweep.selection.choose)."""
        return choose(self.trial_scores())

    def predictions(self, run_id: str) -> tuple[list, list] | None:
        """(per-example predictions, references) of a run, if they were kept."""
        if run_id not in self._predictions and self._store is not None:
            found = self._store.predictions(run_id)
            if found is not None:
                self._predictions[run_id] = found
        return self._predictions.get(run_id)

    def eval_sets(self, run_id: str) -> dict[str, dict]:
        """A run's more evaluation sets ({name: predictions, references, probabilities, info}; see
        harness.run.eval_sets), where the store kept them."""
        return self._store.eval_sets(run_id) if self._store is not None else {}

    def probabilities(self, run_id: str) -> list | None:
        """Per-example class probabilities of a run, where it kept them (harness.report.calibration)."""
        return self._store.probabilities(run_id) if self._store is not None else None

    def to_json(self, path: str | Path, predictions: bool = True) -> Path:
        data: dict[str, Any] = {"harness_results": EXPORT_VERSION, "name": self.name, "tasks": self.tasks,
                                "runs": json.loads(self.runs.to_json(orient="records")),
                                "carbon_intensity": self.carbon_intensity}
        if self.diverged:
            data["diverged"] = self.diverged
        if len(self.trials):
            data["trials"] = json.loads(self.trials.to_json(orient="records"))
            data["tuning"] = curves(self)  # the expected best score for a budget, per tuned cell
        if predictions:
            data["predictions"] = {i: p for i in self.runs.run_id if (p := self.predictions(i)) is not None}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_output(path, json.dumps(data))
        return path


def _overlaps(cards: dict) -> dict[str, tuple[int, int]]:
    """Each task's eval examples that overlap its train rows, of its eval examples; a task whose data
    cannot be read here is left out (the runs' records are what the boards show)."""
    from harness.tasks.overlap import task_overlap

    found = {}
    for name, card in cards.items():
        try:
            counted = task_overlap(card)
        except Exception:  # noqa: BLE001 - data gone since the runs: no flag, nothing else lost
            continue
        found[name] = (len(counted.found), counted.rows)
    return found


def _trial_frame(scores: list[TrialScore]) -> pd.DataFrame:
    rows = [{"run_id": t.run_id, "model": t.group[0], "strategy": t.group[2], "task": t.group[1], "point": t.point,
             "setting": t.setting, "seed": t.seed, "seeds": list(t.seeds), "settings": t.settings, "order": t.order,
             "dev": t.dev, "eval": t.eval, "seconds": t.seconds, "epochs": t.epochs, "pruned": t.pruned,
             "planned_epochs": t.planned_epochs, "compute": t.compute}
            for t in scores]
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def _given(value, missing):
    """A trial column's value, or `missing` where an older results file lacks the column."""
    return float(value) if value is not None and pd.notna(value) else missing


def _variant(signature: str | None) -> str | None:
    return signature.split("|", 2)[-1] if signature else None


def _fill_metrics(frame: pd.DataFrame, metrics: dict[str, list[str]], tasks: dict[str, str], store) -> pd.DataFrame:
    """Done records with each card metric they lack (a metric added to the card after they ran, or
    one whose variant changed) computed from their stored predictions, and written back to the
    store once (Store.add_metrics records which). Metrics that need the model are in the run id:
    a record never lacks them."""
    from harness.config.registry import METRICS

    frame = frame.copy()
    for index, record in zip(frame.index, frame.itertuples()):
        wanted = [m for m in metrics.get(tasks.get(record.id, record.task), []) if m in METRICS
                  and not METRICS.get(m).needs_model]
        stale = [m for m in wanted if m not in record.metrics or (
            m in record.signatures and _variant(record.signatures[m]) != _variant(METRICS.get(m).signature))]
        if not stale or (stored := store.predictions(record.id)) is None:
            continue
        found = {m: METRICS.get(m)(*stored) for m in stale}
        signed = {m: METRICS.get(m).signature for m in stale}
        if store.readonly:  # computed for this report only; the command says so
            store.unsaved_metrics += 1
        else:
            store.add_metrics(record.id, found, signed)
        frame.at[index, "metrics"] = record.metrics | found
        frame.at[index, "signatures"] = record.signatures | signed
        frame.at[index, "info"] = record.info | {
            "report_time_metrics": sorted(set(record.info.get("report_time_metrics", [])) | set(found))}
    return frame


def _environment(recorded: dict) -> dict:
    """The ENVIRONMENT_KEYS of a run's recorded environment (package versions from its packages)."""
    packages = recorded.get("packages") or {}
    return {key: recorded.get(key, packages.get(key)) for key in ENVIRONMENT_KEYS}


def served(cost: dict) -> dict:
    """What a run's cost says of serving and shipping it (harness.run.serving) and of the energy it
    took (harness.run.energy): the median latency at batch 1 as trained (an adapter unmerged) and
    merged, the bytes it ships, its training FLOPs, the kWh of its training and of the whole cell
    and how they were obtained; None where the record predates them or measuring failed."""
    serving = cost.get("serving") or {}
    as_trained = serving.get("unmerged") or serving.get("as_trained") or {}
    energy = cost.get("energy") or {}
    methods = energy.get("method") or {}
    return {"serving_device": serving.get("device"), "latency_ms": as_trained.get("latency_ms", {}).get("median"),
            "merged_latency_ms": (serving.get("merged") or {}).get("latency_ms", {}).get("median"),
            "shipped_bytes": (cost.get("shipped_bytes") or {}).get("files"),
            "train_flops": _number((cost.get("flops") or {}).get("train")),
            "train_kwh": _number((energy.get("phases") or {}).get("train")), "kwh": _number(energy.get("kwh")),
            "energy_method": "; ".join(f"{part} {how}" for part, how in methods.items() if how) or None}


def _number(value):
    """A recorded figure, or None where the record holds why it could not be measured."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
