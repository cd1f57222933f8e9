"""The simulator's picture: occupancy against the worst-window abandon rate. matplotlib is the ``sim``
extra (``pip install .[sim]``), imported only here and only when a plot is drawn."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from callcenter.dialer.sim.model import RunResult
from callcenter.errors import CallcenterError

INSTALL_HINT = "install the sim extra: pip install .[sim]"


class MatplotlibMissing(CallcenterError):
    """A plot was asked for without matplotlib installed."""

    error_id = "sim-extra-missing"

    def __init__(self) -> None:
        super().__init__(f"plotting needs matplotlib, which is not installed; {INSTALL_HINT}")


def require_matplotlib() -> None:
    """Raises `MatplotlibMissing` unless matplotlib can be imported (checked before a long run)."""
    if importlib.util.find_spec("matplotlib") is None:
        raise MatplotlibMissing


_MARKERS = {"progressive": "s", "vicidial": "^", "predictive": "o"}


def plot(rows: Sequence[RunResult], path: str | Path, *, target: float = 0.03) -> Path:
    """Occupancy against the worst-window abandon rate, one panel per agent count: a marker per pacer,
    a colour per population, the target as a dashed line."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = sorted({r.agents for r in rows})
    names = list(dict.fromkeys(r.population for r in rows))
    colours = {name: f"C{i}" for i, name in enumerate(names)}
    fig, axes = plt.subplots(1, len(counts), figsize=(5 * len(counts), 4.4), sharey=True, squeeze=False)
    for ax, agents in zip(axes[0], counts, strict=True):
        for r in rows:
            if r.agents == agents:
                ax.scatter(r.worst_window * 100, r.occupancy * 100, marker=_MARKERS.get(r.pacer, "x"),
                           color=colours[r.population], s=60, edgecolors="black", linewidths=0.5)
        ax.axvline(target * 100, color="red", linestyle="--", linewidth=1)
        ax.set_title(f"{agents} agents")
        ax.set_xlabel("worst window abandon rate (%)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("occupancy (%)")
    handles = [Line2D([], [], marker=m, linestyle="", color="grey", label=p) for p, m in _MARKERS.items()]
    handles += [Line2D([], [], marker="o", linestyle="", color=c, label=n) for n, c in colours.items()]
    handles.append(Line2D([], [], color="red", linestyle="--", label=f"target {target * 100:g}%"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle("Outbound pacing: utilisation against abandon rate")
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
