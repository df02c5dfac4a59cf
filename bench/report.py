#!/usr/bin/env python3
"""`make bench`: runs mproc's benchmarks, CPython's and the raw-system-call
baselines, and prints one table of medians from this run, with ratios:

    operation | unit | mproc | CPython | raw OS | mproc vs CPython | mproc vs raw

A ratio is how many times faster mproc is than the other (above 1: mproc is
faster; 0.50 vs raw: half the speed of the raw system calls). The same rows go
to BUILD/bench/report.tsv.

Usage: report.py --build BUILD [--filter WORD]
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3}
RATE_UNITS = {"GB/s": 1e9, "msg/s": 1.0, "items/s": 1.0}
GBENCH_REPETITIONS = 5
GBENCH_MIN_TIME = 0.2
# Each benchmark first runs this long unmeasured, as cpython_bench.py does:
# a freshly booted VM pays for the first touch of each page of memory, and
# allocators settle.
WARMUP_SECONDS = 0.5


@dataclass
class Row:
    operation: str
    unit: str
    bytes: int
    mproc: str
    cpython: str
    raw: str


def read_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 6:
                sys.exit(f"{path}: expected 6 tab-separated fields: {line!r}")
            op, unit, nbytes, mproc, cpython, raw = fields
            if unit not in TIME_UNITS and unit not in RATE_UNITS:
                sys.exit(f"{path}: unknown unit {unit!r}")
            none = lambda v: "" if v == "-" else v
            rows.append(Row(op, unit, 0 if nbytes == "-" else int(nbytes), none(mproc), none(cpython), none(raw)))
    return rows


def run_gbench(binary, names):
    """Median real time per operation, in seconds, of each named benchmark: per
    iteration, or per item for a benchmark that moves a batch of items in each
    iteration and says how many in its `batch` counter. A benchmark timed with
    UseRealTime() (named NAME/real_time) is found under NAME."""
    if not names:
        return {}
    pattern = "^(" + "|".join(re.escape(n) for n in sorted(names)) + ")(/real_time)?$"
    cmd = [binary, f"--benchmark_filter={pattern}", "--benchmark_format=json",
           f"--benchmark_repetitions={GBENCH_REPETITIONS}", "--benchmark_report_aggregates_only=true",
           f"--benchmark_min_time={GBENCH_MIN_TIME}", f"--benchmark_min_warmup_time={WARMUP_SECONDS}"]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    results = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            name = b["run_name"].removesuffix("/real_time")
            results[name] = b["real_time"] * scale[b["time_unit"]] / b.get("batch", 1)
    return results


def run_cpython(keys):
    if not keys:
        return {}
    out = subprocess.run([sys.executable, os.path.join(HERE, "cpython_bench.py"), *sorted(keys)],
                         check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {cpu}, "
            f"Linux {platform.release()}, CPython {platform.python_version()}")


def display(row, seconds):
    """A time per operation in the row's unit."""
    if seconds is None:
        return None
    if row.unit in TIME_UNITS:
        return seconds / TIME_UNITS[row.unit]
    per_op = row.bytes if row.unit == "GB/s" else 1
    return per_op / seconds / RATE_UNITS[row.unit]


def fmt(value):
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def ratio(mproc_seconds, other_seconds):
    if mproc_seconds is None or other_seconds is None:
        return None
    return other_seconds / mproc_seconds


def fmt_ratio(value):
    return "-" if value is None else (f"{value:.2f}x" if value < 10 else f"{value:.0f}x")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--filter", default="")
    args = parser.parse_args()

    rows = [r for r in read_rows(os.path.join(HERE, "rows.tsv")) if args.filter.lower() in r.operation.lower()]
    if not rows:
        sys.exit(f"no benchmark row matches {args.filter!r}")

    bench_dir = os.path.join(args.build, "bench")
    mproc = run_gbench(os.path.join(bench_dir, "mproc_bench"), {r.mproc for r in rows if r.mproc})
    raw = run_gbench(os.path.join(bench_dir, "raw_bench"), {r.raw for r in rows if r.raw})
    cpython = run_cpython({r.cpython for r in rows if r.cpython})

    header = ["operation", "unit", "mproc", "CPython", "raw OS", "mproc vs CPython", "mproc vs raw"]
    table = []
    tsv = ["\t".join(["operation", "unit", "mproc", "cpython", "raw", "better", "mproc_vs_cpython", "mproc_vs_raw"])]
    for r in rows:
        t_mproc, t_cpython, t_raw = mproc.get(r.mproc), cpython.get(r.cpython), raw.get(r.raw)
        values = [display(r, t) for t in (t_mproc, t_cpython, t_raw)]
        ratios = [ratio(t_mproc, t_cpython), ratio(t_mproc, t_raw)]
        table.append([r.operation, r.unit, *map(fmt, values), *map(fmt_ratio, ratios)])
        better = "lower" if r.unit in TIME_UNITS else "higher"
        cells = ["" if v is None else f"{v:.6g}" for v in values + ratios]
        tsv.append("\t".join([r.operation, r.unit, *cells[:3], better, *cells[3:]]))

    widths = [max(len(str(line[i])) for line in [header] + table) for i in range(len(header))]
    print(machine())
    print("medians from this run; ratios: how many times faster mproc is (above 1: mproc faster)")
    print()
    for i, line in enumerate([header] + table):
        cells = [str(c).ljust(w) if j < 2 else str(c).rjust(w) for j, (c, w) in enumerate(zip(line, widths))]
        print("| " + " | ".join(cells) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    os.makedirs(bench_dir, exist_ok=True)
    with open(os.path.join(bench_dir, "report.tsv"), "w") as f:
        f.write("\n".join(tsv) + "\n")
    print(f"\nwritten to {os.path.join(bench_dir, 'report.tsv')}")


if __name__ == "__main__":
    main()
