#!/usr/bin/env python3
"""Prints the median of every criterion benchmark under target/criterion as a
markdown table (ns per iteration, and per element where a throughput is set).
Usage: python3 scripts/bench-medians.py [FILTER]"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
pattern = sys.argv[1] if len(sys.argv) > 1 else ""
rows = []
for est in sorted(root.glob("**/new/estimates.json")):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    name = bench["full_id"]
    if pattern not in name:
        continue
    median = json.loads(est.read_text())["median"]["point_estimate"]
    per = ""
    tp = bench.get("throughput") or {}
    elements = tp.get("Elements")
    if elements:
        per = f"{median / elements:.1f}"
    rows.append((name, median, per))
print("| benchmark | median ns | ns per element |")
print("|---|---|---|")
for name, median, per in rows:
    print(f"| {name} | {median:.1f} | {per} |")
