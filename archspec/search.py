"""``archspec search``: Optuna proposes settings from a space file, the plan refuses what breaks the limits.

Each trial is one proposal: a value for every key of the space (conditional keys only when their
condition holds), applied to the base spec as ``--set`` overrides and fitted to the data as ``fit``
fits a spec. Its plan gives the parameters, FLOPs and activation estimate in milliseconds, without
torch: a proposal that does not plan, or whose plan breaks a constraint or the memory budget, is
told to Optuna as PRUNED with the reason, and never trained. The others are trained once per seed
(when accuracy is an objective) and their objective values told.

A single objective is searched with TPE and pruned during training by Optuna's median pruner (or
Hyperband), from the validation accuracy of each epoch of the first seed; two or more objectives
with NSGA-II, without pruning. Studies live in an Optuna storage: an SQLite file by default, any
SQLAlchemy URL (PostgreSQL for several machines), or a journal file. Workers that share the storage
and the study name share the trials; a search that is run again continues its study.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.errors import ArchspecError
from archspec.search_space import Space, holds, setting, setting_value
from archspec.spec import SpecFile

if TYPE_CHECKING:
    import optuna

    from archspec.nodes import Plan
    from archspec.sweep import FitSweep

OBJECTIVES = {"accuracy": "maximize", "gflops": "minimize", "params": "minimize", "latency": "minimize",
              "memory": "minimize"}  # fmt: skip
"""What a search can optimise, and which way: accuracy up, every cost down."""
DEFAULT_OBJECTIVES = ("accuracy", "gflops")
MAX_REFUSED_IN_A_ROW = 200
"""Proposals refused by the plan in a row before a search gives up: the constraints leave almost nothing."""
INSTALL_HINT = "pip install optuna sqlalchemy (or pip install -e '.[search]' in a checkout)"


class SearchError(ArchspecError):
    """A study that cannot be opened or continued as asked (AS1102), or a search that cannot go on."""

    code = "AS1102"


class NothingValid(ArchspecError):
    """The plan refused every proposal for a long while: the space leaves (almost) no valid candidate (AS1101)."""

    code = "AS1101"


class _Refused(Exception):
    """A proposal the plan refuses; never trained."""


class _PrunedInTraining(Exception):
    """The pruner stopped a trial after an epoch."""


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError:
        raise ArchspecError(f"archspec search needs Optuna: {INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def default_storage(space: Space) -> str:
    """``search.db`` beside the space file, or in the working folder for a shipped space."""
    from archspec.compose import SHIPPED_SPECS

    folder = space.path.resolve().parent
    if folder.is_relative_to(SHIPPED_SPECS.resolve()):
        folder = Path.cwd()
    return str(folder / "search.db")


def open_storage(where: str) -> Any:
    """An Optuna storage: an SQLAlchemy URL (``sqlite:///x.db``, ``postgresql+psycopg://...``), a
    ``.journal`` file (Optuna's journal storage, safe for many processes on one file system), or any
    other path, an SQLite file."""
    optuna = optuna_module()
    if where.endswith((".journal", ".log")) and "://" not in where:
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(where))
    url = where if "://" in where else f"sqlite:///{Path(where).resolve()}"
    # Optuna's advice for SQLite shared by processes: wait for the lock rather than fail at once.
    engine: dict[str, Any] = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(5):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine)
            break
        except ImportError as exc:
            raise ArchspecError(f"--storage {where}: {exc}; for PostgreSQL: pip install 'psycopg[binary]'") from None
        except Exception as exc:  # SQLAlchemy's errors for a URL it cannot use or a server it cannot reach
            # Workers that start together race to create the tables of a new storage; the loser retries.
            racing = ("IntegrityError", "already exists", "database is locked")
            if any(sign in f"{type(exc).__name__} {exc}" for sign in racing) and attempt < 4:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise ArchspecError(f"--storage {where}: cannot open it: {str(exc).splitlines()[0]}") from None
    if url.startswith("sqlite"):
        _write_ahead(storage.engine)
    return storage


@contextmanager
def storage_errors(where: str) -> Iterator[None]:
    """A storage that fails while the study is read or written (a full disk, a read-only file, a server that
    went away) is reported as an output that cannot be written (AS603), naming the storage and the cause."""
    optuna = optuna_module()
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (optuna.exceptions.StorageInternalError, SQLAlchemyError) as exc:
        from archspec.output import OutputError

        cause = exc.__cause__ or exc
        detail = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        raise OutputError(f"--storage {where}: cannot read or write the study: {detail}") from None


def close_storage(storage: Any) -> None:
    """Close the database connections an SQLAlchemy storage holds (a journal file holds none)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def _write_ahead(engine: Any) -> None:
    """SQLite in write-ahead-log mode, synced at checkpoints: a refused proposal then costs about 15 ms
    of storage instead of 110 (two fsyncs per write). Readers no longer block the writer. The log
    needs shared memory between the processes, so the file must be on a local file system (as
    SQLite's locking needs anyway); a commit survives a crash of the process, not a power cut."""
    from sqlalchemy import event

    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "connect")
    def synchronous_normal(connection: Any, record: Any) -> None:
        connection.execute("PRAGMA synchronous=NORMAL")

    engine.dispose()  # connections made from here on take the setting


@dataclass(frozen=True)
class Objectives:
    names: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Objectives:
        names = tuple(part.strip() for part in text.split(",") if part.strip())
        unknown = [name for name in names if name not in OBJECTIVES]
        if not names or unknown:
            raise ArchspecError(f"--objectives {text}: expected names from {', '.join(OBJECTIVES)}, comma-separated")
        if len(set(names)) != len(names):
            raise ArchspecError(f"--objectives {text}: an objective is named twice")
        return cls(names)

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[name] for name in self.names]

    @property
    def trains(self) -> bool:
        return "accuracy" in self.names


def open_study(
    space: Space,
    storage: Any,
    name: str,
    objectives: Objectives | None = None,
    sampler: str | None = None,
    seed: int | None = None,
    pruner: str = "median",
    create: bool = True,
) -> tuple[optuna.Study, Objectives]:
    """The study ``name`` in ``storage``, made for this space and these objectives, or continued; and
    its objectives (``None``: the stored study's, or accuracy and GFLOPs for a new one).

    A stored study keeps the space fingerprint and objectives it was made with; another space or other
    objectives are refused (AS1102) rather than mixed into its trials.
    """
    optuna = optuna_module()
    existing = {summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if name not in existing and not create:
        known = ", ".join(sorted(existing)) or "none"
        raise SearchError(f"--study {name}: no such study in this storage (studies: {known})")
    if objectives is None:
        stored = optuna.load_study(study_name=name, storage=storage).user_attrs if name in existing else {}
        objectives = Objectives(tuple(stored.get("objectives", DEFAULT_OBJECTIVES)))
    sampler = sampler or ("tpe" if len(objectives.names) == 1 else "nsga2")
    chosen = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }[sampler]()
    stops = None
    if len(objectives.names) == 1 and objectives.trains and pruner != "none":
        stops = (
            optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
            if pruner == "median"
            else optuna.pruners.HyperbandPruner(min_resource=1)
        )
    study = optuna.create_study(
        storage=storage, study_name=name, sampler=chosen, pruner=stops or optuna.pruners.NopPruner(),
        directions=_stored_directions(storage, name) if name in existing else objectives.directions,
        load_if_exists=True,
    )  # fmt: skip
    stored = study.user_attrs
    if name in existing:
        if stored.get("objectives") != list(objectives.names):
            raise SearchError(
                f"study {name} was made with the objectives {','.join(stored.get('objectives', []))}, not "
                f"{','.join(objectives.names)}: give those, or another --study"
            )
        if stored.get("space") != space.fingerprint():
            raise SearchError(
                f"study {name} was made from another space (fingerprint {stored.get('space')}, this one "
                f"{space.fingerprint()}): give another --study"
            )
    else:
        study.set_user_attr("objectives", list(objectives.names))
        study.set_user_attr("space", space.fingerprint())
        study.set_user_attr("base", space.base.name)
    return study, objectives


def _stored_directions(storage: Any, name: str) -> list[str]:
    optuna = optuna_module()
    loaded = optuna.load_study(study_name=name, storage=storage)
    return [direction.name.lower() for direction in loaded.directions]


def propose(trial: optuna.Trial, space: Space) -> list[str]:
    """A value for every key whose condition holds, as ``--set`` settings in the space's order."""
    chosen: dict[str, Any] = {}
    settings = []
    for key, axis in space.axes.items():
        if any(not holds(chosen.get(other), wanted) for other, wanted in (axis.when or {}).items()):
            continue
        value: Any
        if axis.int_range is not None:
            value = trial.suggest_int(key, *axis.int_range, step=int(axis.step or 1), log=axis.log)
        elif axis.float_range is not None:
            step = float(axis.step) if axis.step is not None else None
            value = trial.suggest_float(key, *axis.float_range, step=step, log=axis.log)
        else:
            assert axis.choice is not None
            labels = [setting_value(option) for option in axis.choice]
            label = trial.suggest_categorical(key, labels)
            value = axis.choice[labels.index(label)]
        chosen[key] = value
        settings.append(setting(key, value))
    return settings


@dataclass
class Search:
    """One worker's search: the space, the study, what trials train on, and what they measure."""

    space: Space
    study: optuna.Study
    objectives: Objectives
    training: FitSweep | None = None
    """What each trial trains on, and how (the data and options of ``archspec fit``)."""
    device: str = "cpu"
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None
    base: SpecFile = field(init=False)

    def __post_init__(self) -> None:
        self.base = SpecFile(self.space.base)

    def run(self, trials: int, timeout: float | None = None) -> int:
        """Run until ``trials`` proposals were evaluated (trained or measured) or ``timeout`` seconds
        passed; proposals the plan refuses do not count. Returns the number evaluated.

        Ctrl-C marks the running trial FAIL (its settings are kept) and is raised again.
        """
        optuna_module()
        from optuna.trial import TrialState

        start = time.monotonic()
        done = refused_in_a_row = 0
        refused: set[tuple[str, ...]] = set()  # the distinct candidates refused since the last one that was not
        size = self.space.size()
        while done < trials and (timeout is None or time.monotonic() - start < timeout):
            trial = self.study.ask()
            try:
                values = self._evaluate(trial)
            except _Refused as refusal:
                trial.set_user_attr("pruned_by", "plan")
                trial.set_user_attr("reason", str(refusal))
                self._tell(trial, state=TrialState.PRUNED)
                refused_in_a_row += 1
                refused.add(tuple(trial.user_attrs.get("settings", ())))
                if size is not None and len(refused) >= size:
                    raise NothingValid(
                        f"the plan refused every one of the space's {size:,} candidates: the space and its "
                        f"constraints leave no valid candidate; the last: {refusal}"
                    ) from None
                if refused_in_a_row >= MAX_REFUSED_IN_A_ROW:
                    raise NothingValid(
                        f"the plan refused {refused_in_a_row:,} proposals in a row: the space and its constraints "
                        f"leave (almost) no valid candidate; the last: {refusal}"
                    ) from None
                continue
            except _PrunedInTraining as pruned:
                trial.set_user_attr("pruned_by", "training")
                trial.set_user_attr("reason", str(pruned))
                self._tell(trial, state=TrialState.PRUNED)
            except KeyboardInterrupt:
                trial.set_user_attr("reason", "interrupted")
                self._tell(trial, state=TrialState.FAIL)
                raise
            except ArchspecError as exc:  # diverged, or a data problem the first trial meets
                trial.set_user_attr("reason", str(exc).splitlines()[0])
                self._tell(trial, state=TrialState.FAIL)
            except (RuntimeError, MemoryError) as exc:
                trial.set_user_attr("reason", f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                self._tell(trial, state=TrialState.FAIL)
            else:
                self._tell(trial, values=values)
            refused_in_a_row = 0
            refused.clear()
            done += 1
        return done

    def _tell(self, trial: optuna.Trial, **outcome: Any) -> None:
        frozen = self.study.tell(trial, **outcome)
        if self.on_trial is not None:
            self.on_trial(frozen)

    def _evaluate(self, trial: optuna.Trial) -> list[float]:
        from archspec import plan
        from archspec.budget import activation_bytes

        settings = propose(trial, self.space)
        trial.set_user_attr("settings", settings)
        try:
            native = plan(self.base.load(settings))
            adaptation = self._adaptation(native)
            planned = plan(self.base.load([*settings, *adaptation])) if adaptation else native
        except ArchspecError as exc:
            raise _Refused(f"invalid: {str(exc).splitlines()[0]}") from None
        activations = activation_bytes(planned, 4) / 2**20
        figures = {
            "adapted": adaptation, "params": planned.params, "gflops": planned.flops / 1e9,
            "activation_mib": activations, "memory_mib": planned.params * 4 / 2**20 + activations,
        }  # fmt: skip
        for key, value in figures.items():
            trial.set_user_attr(key, value)
        self._check_constraints(planned, activations)
        values: dict[str, float] = {
            "params": float(planned.params), "gflops": planned.flops / 1e9,
            "memory": planned.params * 4 / 2**20 + activations,
        }  # fmt: skip
        if self.objectives.trains:
            if self.training is None:
                raise ArchspecError("accuracy is an objective, but the search has no training data")
            values["accuracy"] = self._train(trial, planned)
        if "latency" in self.objectives.names:
            from archspec.sweep import measure_latency

            values["latency"] = measure_latency(planned, 1, self.device, repeats=5)
            trial.set_user_attr("latency_ms", values["latency"])
        return [values[name] for name in self.objectives.names]

    def _adaptation(self, native: Plan) -> list[str]:
        if self.training is None:  # planned as written
            return []
        from archspec.fit import adapt

        return adapt(native, self.training.images, self.training.size)

    def _check_constraints(self, planned: Plan, activations_mib: float) -> None:
        limits = self.space.constraints
        if limits.max_params is not None and planned.params > limits.max_params:
            raise _Refused(f"{planned.params:,} params, over max_params {limits.max_params:,}")
        if limits.max_gflops is not None and planned.flops / 1e9 > limits.max_gflops:
            raise _Refused(f"{planned.flops / 1e9:.4g} GFLOPs, over max_gflops {limits.max_gflops:g}")
        if limits.max_activation_mib is not None and activations_mib > limits.max_activation_mib:
            raise _Refused(
                f"{activations_mib:.3g} MiB of activations, over max_activation_mib {limits.max_activation_mib:g}"
            )
        if self.objectives.trains and self.training is not None:
            from archspec.budget import BudgetError

            try:
                self.training.check_budget(planned, remedy="--no-budget")
            except BudgetError as exc:
                raise _Refused(f"over the memory budget: {exc}") from None

    def _train(self, trial: optuna.Trial, planned: Plan) -> float:
        from archspec.fit import fit

        assert self.training is not None
        accuracies, seconds = [], []
        prunable = len(self.study.directions) == 1
        for seed in range(self.training.seeds):

            def report(metrics: Any, seed: int = seed) -> None:
                if seed != 0 or not prunable:
                    return
                trial.report(metrics.val_acc, metrics.epoch)
                if trial.should_prune():
                    trial.set_user_attr("accuracies", [metrics.val_acc])
                    raise _PrunedInTraining(f"behind the median after epoch {metrics.epoch} ({metrics.val_acc:.2%})")

            config = replace(self.training.config, seed=seed)
            result = fit(planned, self.training.images, self.training.split, config, self.training.device,
                         on_epoch=report, loader="memory")  # fmt: skip
            accuracies.append(result.final.val_acc)
            seconds.append(result.wall_s)
            trial.set_user_attr("accuracies", accuracies)
            trial.set_user_attr("fit_s", sum(seconds) / len(seconds))
            trial.set_user_attr("precision", result.precision)
        return sum(accuracies) / len(accuracies)


# Reports.


@dataclass
class TrialRow:
    number: int
    state: str
    settings: list[str]
    params: int | None
    gflops: float | None
    accuracies: list[float]
    fit_s: float | None
    values: list[float] | None
    pareto: bool = False
    pruned_by: str | None = None
    reason: str | None = None
    adapted: list[str] = field(default_factory=list)
    latency_ms: float | None = None
    precision: str | None = None
    """What the trial trained in (see :func:`archspec.fit.resolve_precision`); None if it was not trained."""

    @property
    def accuracy(self) -> float | None:
        return sum(self.accuracies) / len(self.accuracies) if self.accuracies else None

    @property
    def accuracy_std(self) -> float | None:
        if not self.accuracies:
            return None
        mean, count = self.accuracy or 0.0, len(self.accuracies)
        return math.sqrt(sum((a - mean) ** 2 for a in self.accuracies) / (count - 1)) if count > 1 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number, "state": self.state, "settings": self.settings, "params": self.params,
            "gflops": self.gflops, "accuracy": self.accuracy, "accuracy_std": self.accuracy_std,
            "accuracies": self.accuracies, "fit_s": self.fit_s, "latency_ms": self.latency_ms,
            "values": self.values, "pareto": self.pareto, "pruned_by": self.pruned_by, "reason": self.reason,
            "adapted": self.adapted, "precision": self.precision,
        }  # fmt: skip


def trial_rows(study: optuna.Study) -> list[TrialRow]:
    """Every trial of the study, in number order, with the study's Pareto front marked."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        rows.append(
            TrialRow(
                number=trial.number,
                state=trial.state.name,
                settings=list(attrs.get("settings", [])),
                params=attrs.get("params"),
                gflops=attrs.get("gflops"),
                accuracies=list(attrs.get("accuracies", [])),
                fit_s=attrs.get("fit_s"),
                values=list(trial.values) if trial.values is not None else None,
                pruned_by=attrs.get("pruned_by"),
                reason=attrs.get("reason"),
                adapted=list(attrs.get("adapted", [])),
                latency_ms=attrs.get("latency_ms"),
                precision=attrs.get("precision"),
            )
        )
    signs = [1.0 if direction.name == "MAXIMIZE" else -1.0 for direction in study.directions]
    front = pareto_numbers([(row.number, row.values) for row in rows if row.state == "COMPLETE" and row.values], signs)
    for row in rows:
        row.pareto = row.number in front
    return sorted(rows, key=lambda row: row.number)


def pareto_numbers(points: Sequence[tuple[int, Sequence[float] | None]], signs: Sequence[float]) -> set[int]:
    """The numbers of the points no other point dominates (each value times its sign is maximised)."""
    scored = [(number, [s * v for s, v in zip(signs, values, strict=True)]) for number, values in points if values]
    front = set()
    for number, mine in scored:
        dominated = any(
            all(o >= m for o, m in zip(other, mine, strict=True))
            and any(o > m for o, m in zip(other, mine, strict=True))
            for _, other in scored
        )
        if not dominated:
            front.add(number)
    return front


def counts(rows: Sequence[TrialRow]) -> dict[str, int]:
    found = {"COMPLETE": 0, "PRUNED by the plan": 0, "PRUNED in training": 0, "FAIL": 0, "RUNNING": 0}
    for row in rows:
        key = (
            f"PRUNED {'by the plan' if row.pruned_by == 'plan' else 'in training'}"
            if row.state == "PRUNED"
            else row.state
        )
        found[key] = found.get(key, 0) + 1
    return found


def format_table(rows: Sequence[TrialRow], seeds: int, markdown: bool = False) -> str:
    from archspec.tables import markdown_table, text_table

    header = ["trial", "state", "settings", "params", "GFLOPs", f"accuracy % ({seeds} seed{'s' * (seeds > 1)})",
              "fit time (s)", "Pareto"]  # fmt: skip
    body = []
    for row in rows:
        state = row.state if row.state != "PRUNED" else f"PRUNED ({row.pruned_by})"
        mean, std = row.accuracy, row.accuracy_std
        accuracy = f"{100 * mean:.1f} ± {100 * (std or 0):.1f}" if mean is not None and row.state == "COMPLETE" else ""
        body.append([
            str(row.number), state, " ".join(row.settings),
            f"{row.params:,}" if row.params is not None else "", f"{row.gflops:.4f}" if row.gflops is not None else "",
            accuracy, f"{row.fit_s:.1f}" if row.fit_s is not None and row.state == "COMPLETE" else "",
            "yes" if row.pareto else "",
        ])  # fmt: skip
    right = {0, 3, 4, 5, 6}
    return markdown_table(header, body, right) if markdown else text_table(header, body, right)


def export_best(
    rows: Sequence[TrialRow], space: Space, folder: str | Path, study: str, force: bool = False
) -> list[Path]:
    """Write each Pareto trial as a child spec of the base (``extends:`` plus its settings and the data
    fitting), check that it plans to the trial's parameter count, and return the files written."""
    import yaml

    from archspec import plan
    from archspec.compose import parse_override
    from archspec.output import OutputError, check_destination, write_text_atomic
    from archspec.spec import load_spec

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--export-best {folder}: cannot make the folder: {exc.strerror}") from None
    written = []
    for row in rows:
        if not row.pareto:
            continue
        path = folder / f"{study}-trial{row.number}.yaml"
        check_destination(path, force)
        data: dict[str, Any] = {"extends": _relative(space.base, folder), "name": f"{study}-trial{row.number}"}
        for text in [*row.settings, *row.adapted]:
            override = parse_override(text)
            _set(data, override.path, override.value)
        values = ", ".join(f"{v:.6g}" for v in row.values or [])
        header = (
            f"# Trial {row.number} of the study {study}, on its Pareto front (objective values {values}).\n"
            f"# Its settings: {' '.join(row.settings) or '(the base as it is)'}\n"
            + (f"# Fitted to the data: {' '.join(row.adapted)}\n" if row.adapted else "")
        )
        write_text_atomic(path, header + yaml.safe_dump(data, sort_keys=False), force=force)
        planned = plan(load_spec(path))
        if row.params is not None and planned.params != row.params:
            raise SearchError(f"{path}: plans to {planned.params:,} params, not the trial's {row.params:,}")
        written.append(path)
    return written


def _relative(base: Path, folder: Path) -> str:
    """How a child spec in ``folder`` names ``base``: a shipped spec by its name, a file by its relative path."""
    import os

    from archspec.compose import shipped_path

    if shipped_path(base.stem).resolve() == base.resolve():
        return base.stem
    return Path(os.path.relpath(base.resolve(), folder.resolve())).as_posix()


def _set(data: dict[Any, Any], path: Sequence[str | int], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
