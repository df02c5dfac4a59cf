#!/usr/bin/env python3
"""CPython's side of `make bench`: the same operations with pickle and
multiprocessing, timed as medians of several samples.

Prints a JSON object: {key: median seconds per operation}.
Usage: cpython_bench.py [KEY ...]   (no keys: all of them)
"""

import array
import dataclasses
import functools
import json
import pickle
import statistics
import sys
import time

PROTOCOL = pickle.HIGHEST_PROTOCOL
SAMPLES = 7
SAMPLE_SECONDS = 0.1


@dataclasses.dataclass
class Order:
    """The five-field struct of codec_bench.cpp."""
    id: int
    customer: str
    price: float
    quantity: int
    urgent: bool


def pickle_int(n):
    dumps, loads = pickle.dumps, pickle.loads
    for _ in range(n):
        loads(dumps(42, PROTOCOL))


ORDER = Order(123456789, "Ada Lovelace & Co.", 1234.5, 7, True)


def pickle_struct5(n):
    dumps, loads, order = pickle.dumps, pickle.loads, ORDER
    for _ in range(n):
        loads(dumps(order, PROTOCOL))


# array('d') has std::vector<double>'s memory layout; pickle copies it in band.
DOUBLES = array.array("d", (i * 0.5 for i in range((1 << 20) // 8)))


def pickle_array_1mib(n):
    dumps, loads, values = pickle.dumps, pickle.loads, DOUBLES
    for _ in range(n):
        loads(dumps(values, PROTOCOL))


def scale(factor, x):
    return factor * x


def pickle_partial(n):
    """functools.partial pickles its function by qualified name."""
    dumps, loads, f = pickle.dumps, pickle.loads, functools.partial(scale, 3)
    x = 1
    for _ in range(n):
        x = loads(dumps(f, PROTOCOL))(x) & 0xFF


OPERATIONS = {
    "pickle_int": pickle_int,
    "pickle_struct5": pickle_struct5,
    "pickle_array_1mib": pickle_array_1mib,
    "pickle_partial": pickle_partial,
}


def median_seconds_per_op(run):
    """Calibrates a batch size to SAMPLE_SECONDS, then returns the median
    per-operation time over SAMPLES batches."""
    n = 1
    while True:
        start = time.perf_counter()
        run(n)
        elapsed = time.perf_counter() - start
        if elapsed >= SAMPLE_SECONDS / 4 or n >= 1 << 30:
            break
        n *= 4
    n = max(1, int(n * SAMPLE_SECONDS / max(elapsed, 1e-9)))
    samples = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        run(n)
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def main(keys):
    unknown = [k for k in keys if k not in OPERATIONS]
    if unknown:
        sys.exit(f"unknown operations: {', '.join(unknown)}")
    results = {k: median_seconds_per_op(OPERATIONS[k]) for k in (keys or OPERATIONS)}
    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
