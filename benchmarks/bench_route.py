"""Time the 90-minute route: run notebooks 01–06 as a lecture would (full mode unless --fast) and print
every route cell over the threshold, hidden cells included, with the minutes of each stop.

    python benchmarks/bench_route.py [--fast] [--over 3] [--handouts DIR] [--lecture DIR]

Run it twice: the first run fills the training and sampling caches; the second is what a lecturer who
ran the notebooks once before class sees. ``--handouts`` / ``--lecture`` also write the HTML handouts /
the lecture deck from the same executions (what ``scoretutor export html|lecture --full`` writes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from scoretutor.lecture.export import execute, export_lecture, export_notebook, find_notebooks
from scoretutor.lecture.route import NOTEBOOK_NAMES, ROUTE, route_cell_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="fast mode (CI sizes) instead of full mode")
    parser.add_argument("--over", type=float, default=3.0, help="list cells slower than this (seconds)")
    parser.add_argument("--handouts", type=Path, help="also write the HTML handouts here")
    parser.add_argument("--lecture", type=Path, help="also write the lecture deck here")
    args = parser.parse_args()
    executed, wall = {}, {}
    for number, name in NOTEBOOK_NAMES.items():
        (path,) = find_notebooks([name])
        t0 = time.perf_counter()
        executed[number] = execute(path, full=not args.fast)
        wall[number] = time.perf_counter() - t0
        print(f"{name}: {wall[number]:.0f} s")
        if args.handouts:
            export_notebook(path, ["html"], args.handouts, executed=executed[number])
    if args.lecture:
        export_lecture(args.lecture, executed=executed)
    times = route_cell_times(executed)
    print(f"\nroute cells over {args.over:g} s ({'fast' if args.fast else 'full'} mode), of {len(times)}:")
    print("| stop | section | cell | seconds |\n|---|---|---|---|")
    for stop, where, seconds, first in times:
        if seconds > args.over:
            print(f"| {stop} | {where} | `{first}` | {seconds:.1f} |")
    print(f"\nslowest route cell: {max(t[2] for t in times):.1f} s; "
          f"route code in all: {sum(t[2] for t in times):.0f} s over {len(ROUTE)} stops")


if __name__ == "__main__":
    main()
