"""``callcenter dialer simulate``: the pacers on the simulator (model.py), as a table or as JSON, and a
plot of utilisation against abandon rate (plot.py, with the ``sim`` extra). The JSON fields are listed
in docs/dialer-pacing.md."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from callcenter.dialer.sim.model import PACERS, POPULATIONS, compare, table
from callcenter.dialer.sim.plot import MatplotlibMissing, plot, require_matplotlib


def _agent_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"agent counts are whole numbers separated by commas, got {text!r}") from None
    if not counts or min(counts) < 1 or max(counts) > 1000:
        raise argparse.ArgumentTypeError(f"agent counts must be between 1 and 1000, got {text!r}")
    return counts


def _names(choices: Sequence[str], what: str) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [n for n in names if n not in choices]
        if unknown or not names:
            given = ", ".join(unknown) or repr(text)
            raise argparse.ArgumentTypeError(f"unknown {what}: {given}; choose from {', '.join(choices)}")
        return names
    return parse


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"the target is a percentage like 3 or 2.5, got {text!r}") from None
    if not 0.1 <= value <= 10:
        raise argparse.ArgumentTypeError(f"the target must be between 0.1 and 10 percent, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", type=_agent_counts, default=[5, 20, 100], metavar="N,N,...",
                        help="team sizes to run, comma-separated (default 5,20,100)")
    parser.add_argument("--population", action="append", type=_names(list(POPULATIONS), "population"),
                        metavar="NAME", help=f"contact population(s): {', '.join(POPULATIONS)}; repeat the option "
                        "or separate with commas (default: all)")
    parser.add_argument("--pacers", type=_names(PACERS, "pacer"), default=list(PACERS), metavar="NAME,...",
                        help=f"pacers to compare (default {','.join(PACERS)})")
    parser.add_argument("--days", type=int, default=3, help="days simulated, one shift each (default 3)")
    parser.add_argument("--hours", type=float, default=6.0, help="length of the daily shift from 09:00 (default 6)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same figures")
    parser.add_argument("--target", type=_percent, default=3.0, help="abandon target in percent (default 3)")
    parser.add_argument("--workers", type=int, help="processes to run the runs in (default: one per CPU)")
    parser.add_argument("--json", action="store_true", help="print the results as a JSON list instead of a table")
    parser.add_argument("--plot", metavar="PATH", help="also draw occupancy against the worst-window abandon rate "
                        "into this PNG file (default: no plot)")


def run(args: argparse.Namespace) -> int:
    if args.days < 1 or not 0 < args.hours <= 15:
        print("callcenter: --days must be at least 1 and --hours between 0 and 15", file=sys.stderr)
        return 2
    if args.plot:
        try:
            require_matplotlib()  # before the runs, not after them
        except MatplotlibMissing as exc:
            print(f"callcenter: {exc}", file=sys.stderr)
            return 2
    names = [name for group in args.population or [list(POPULATIONS)] for name in group]
    populations = [POPULATIONS[name] for name in dict.fromkeys(names)]
    target = args.target / 100
    rows = compare(args.agents, populations, args.days, args.hours, args.seed, target=target, pacers=args.pacers,
                   workers=args.workers)
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        print(table(rows))
    if args.plot:
        path = plot(rows, args.plot, target=target)
        print(f"plot: {path}", file=sys.stderr if args.json else sys.stdout)
    return 0
