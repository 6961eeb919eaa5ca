"""``sweep --fit --plot`` and ``search --plot``: validation accuracy against cost, one point per variant or trial.

Error bars are the standard deviation over seeds; each variant has its colour, named in the legend.
The Pareto front (no other variant is at least as accurate for less cost) is drawn as a line through
its points, which are filled; the others are hollow. Drawn with matplotlib's Agg backend, so no
display is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.errors import ArchspecError
from archspec.output import write_file_atomic
from archspec.sweep import Row, variant_labels

if TYPE_CHECKING:
    from archspec.search import TrialRow

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower or equal cost and higher accuracy, or lower cost
    and equal accuracy. ``points`` are (cost, accuracy); the result is ordered by cost."""
    front = []
    for i, (cost, acc) in enumerate(points):
        beaten = any((c <= cost and a > acc) or (c < cost and a >= acc) for j, (c, a) in enumerate(points) if j != i)
        if not beaten:
            front.append(i)
    return sorted(front, key=lambda i: points[i])


def plot_sweep(rows: Sequence[Row], path: str | Path, force: bool = False) -> Path:
    """Draw the trained rows of a sweep to ``path`` (.png, .svg or .pdf); the file appears whole or not at all."""
    path = _plot_path(path)
    labelled = zip(variant_labels(rows), rows, strict=True)
    trained_labels = [(label, row) for label, row in labelled if row.status == "ok" and row.acc_mean is not None]
    trained = [row for _, row in trained_labels]
    labels = [label for label, _ in trained_labels]
    if not trained:
        raise ArchspecError(f"--plot {path}: no variant was trained successfully, so there is nothing to draw")
    pyplot, ticker = _matplotlib()
    figure, axes = pyplot.subplots(1, 2, figsize=(12, 5), sharey=True, layout="constrained")
    accuracy = [100 * (row.acc_mean or 0.0) for row in trained]
    spread = [100 * (row.acc_std or 0.0) for row in trained]
    for axis, (what, costs) in zip(
        axes,
        (("GFLOPs per image", [(row.flops or 0) / 1e9 for row in trained]),
         ("parameters (millions)", [(row.params or 0) / 1e6 for row in trained])),
        strict=True,
    ):  # fmt: skip
        front = pareto_front(list(zip(costs, accuracy, strict=True)))
        for index in range(len(trained)):
            on_front = index in front
            axis.errorbar(
                costs[index], accuracy[index], yerr=spread[index], fmt="o", capsize=3,
                color=f"C{index % 10}", markerfacecolor=f"C{index % 10}" if on_front else "white",
                label=labels[index],
            )  # fmt: skip
        axis.plot([costs[i] for i in front], [accuracy[i] for i in front], "--", color="grey", label="Pareto front")
        _log_axis(axis, ticker)
        axis.set_xlabel(what)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("validation accuracy (%), mean ± std over seeds")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9)
    return _save(pyplot, figure, path, force)


def plot_search(rows: Sequence[TrialRow], path: str | Path, force: bool = False) -> Path:
    """Draw the complete trials of a search: validation accuracy against GFLOPs, one point per trial
    (error bars: the standard deviation over seeds), the accuracy-GFLOPs Pareto front filled and joined."""
    path = _plot_path(path)
    done = [row for row in rows if row.state == "COMPLETE" and row.accuracy is not None and row.gflops is not None]
    if not done:
        raise ArchspecError(
            f"--plot {path}: the study has no complete trial with an accuracy, so there is nothing to draw"
        )
    pyplot, ticker = _matplotlib()
    figure, axis = pyplot.subplots(figsize=(8, 5), layout="constrained")
    costs = [row.gflops or 0.0 for row in done]
    accuracy = [100 * (row.accuracy or 0.0) for row in done]
    spread = [100 * (row.accuracy_std or 0.0) for row in done]
    front = pareto_front(list(zip(costs, accuracy, strict=True)))
    others = [i for i in range(len(done)) if i not in front]
    axis.errorbar([costs[i] for i in others], [accuracy[i] for i in others], yerr=[spread[i] for i in others],
                  fmt="o", capsize=3, color="C0", markerfacecolor="white", label="trial")  # fmt: skip
    axis.errorbar([costs[i] for i in front], [accuracy[i] for i in front], yerr=[spread[i] for i in front],
                  fmt="o", capsize=3, color="C3", label="on the Pareto front")  # fmt: skip
    axis.plot([costs[i] for i in front], [accuracy[i] for i in front], "--", color="C3")
    for i in front:
        axis.annotate(f"#{done[i].number}", (costs[i], accuracy[i]), textcoords="offset points", xytext=(4, -10),
                      fontsize=8)  # fmt: skip
    if max(costs) >= 10 * min(costs):  # a log scale only where the costs span a decade
        _log_axis(axis, ticker)
    axis.set_xlabel("GFLOPs per image")
    axis.set_ylabel("validation accuracy (%), mean ± std over seeds")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right")
    return _save(pyplot, figure, path, force)


def _plot_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise ArchspecError(f"--plot {path}: the suffix must be one of {', '.join(PLOT_SUFFIXES)}")
    return path


def _matplotlib() -> tuple[Any, Any]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot, ticker
    except ImportError:
        raise ArchspecError(
            "--plot needs matplotlib: pip install matplotlib (or pip install -e '.[fit]' in a checkout)"
        ) from None
    return pyplot, ticker


def _log_axis(axis: Any, ticker: Any) -> None:
    axis.set_xscale("log")
    axis.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axis.xaxis.set_minor_formatter(ticker.NullFormatter())


def _save(pyplot: Any, figure: Any, path: Path, force: bool) -> Path:
    def draw(temp: Path) -> None:
        figure.savefig(temp, format=path.suffix.lower().lstrip("."), dpi=120)

    try:
        return write_file_atomic(path, draw, force=force, suffix=path.suffix)
    finally:
        pyplot.close(figure)
