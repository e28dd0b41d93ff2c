"""Cost of the HTML report beyond the scan itself, on 1M x 100 (the scan benchmark's input).

    python benchmarks/html_speed.py [--rows 1000000] [--classes 100] [--rounds 3]

Runs the scan once per round in this process, then times the text rendering and the HTML
rendering (every figure drawn and PNG-encoded, the page assembled) of that same report.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan_speed import make_input

import labelaudit
from labelaudit.report.html import render_html
from labelaudit.report.render import render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    labels, preds = make_input(args.rows, args.classes)
    timings: dict[str, list[float]] = {"scan": [], "text report": [], "html report": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        report = labelaudit.scan(labels, preds)
        timings["scan"].append(time.perf_counter() - start)
        start = time.perf_counter()
        render(report, "text")
        timings["text report"].append(time.perf_counter() - start)
        start = time.perf_counter()
        page, images = render_html(report.to_dict())
        timings["html report"].append(time.perf_counter() - start)
    print(f"{args.rows:,} x {args.classes}, {args.rounds} rounds; HTML page {len(page) / 1e6:.2f} "
          f"MB with {len(images)} figures\n")  # fmt: skip
    print("| step | median s | min s |")
    print("| --- | ---: | ---: |")
    for name, values in timings.items():
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} |")


if __name__ == "__main__":
    main()
