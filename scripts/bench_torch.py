#!/usr/bin/env python3
"""The workloads of benches/ (W1, W2, W3) in PyTorch eager mode on one thread, for BENCHMARKS.md.

Each workload is timed as the Rust benchmarks time it: a training step is forward, MSE, backward and
an SGD step (lr 0.1) in the usual eager idiom (`opt.zero_grad(); loss = mse(net(x), y);
loss.backward(); opt.step()`), alternating between two batches with different targets; a forward
pass runs under `torch.no_grad()`. Every repetition is timed alone with `time.perf_counter_ns` after a
warm-up, and the table shows the median (and the 10th and 90th percentiles).

    python3 scripts/bench_torch.py            # the table
    python3 scripts/bench_torch.py --json out.json   # also the medians as JSON (nanoseconds)

Never run by CI; needs `pip install torch`.
"""

import argparse
import json
import platform
import statistics
import time

import torch
from torch import nn


def network(*layers):
    """An nn.Sequential of Linear layers, each followed by its activation ('relu' or 'sigmoid')."""
    modules = []
    for inputs, outputs, activation in layers:
        modules.append(nn.Linear(inputs, outputs))
        modules.append(nn.ReLU() if activation == "relu" else nn.Sigmoid())
    return nn.Sequential(*modules)


def batches(inputs, outputs, batch):
    """Two (x, y) batches with different inputs and one-hot targets, rows as samples."""
    generator = torch.Generator().manual_seed(0)
    pairs = []
    for shift in (0, 3):
        x = torch.rand(batch, inputs, generator=generator) * 2 - 1
        y = torch.zeros(batch, outputs)
        for sample in range(batch):
            y[sample, (sample + shift) % outputs] = 1.0
        pairs.append((x, y))
    return pairs


def time_ns(action, repetitions, warmup):
    """Per-call times of `action(i)` in nanoseconds, after `warmup` untimed calls."""
    for i in range(warmup):
        action(i)
    times = []
    clock = time.perf_counter_ns
    for i in range(repetitions):
        start = clock()
        action(i)
        times.append(clock() - start)
    return times


def step_action(net, pairs):
    """One eager training step on pair i % 2: zero_grad, forward, MSE, backward, SGD."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    loss_fn = nn.MSELoss()

    def action(i):
        x, y = pairs[i & 1]
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()

    return action


def forward_action(net, pairs):
    """One forward pass without autograd."""
    x = pairs[0][0]

    def action(_i):
        with torch.no_grad():
            net(x)

    return action


def percentile(values, fraction):
    """The value at `fraction` of the sorted values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="also write the medians (ns) to this file")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply repetition counts")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)

    w1 = network((4, 5, "relu"), (5, 2, "relu"), (2, 1, "sigmoid"))
    w2 = network((64, 32, "relu"), (32, 10, "sigmoid"))
    w3 = network((784, 128, "relu"), (128, 10, "sigmoid"))
    workloads = [
        ("w1_step", step_action(w1, batches(4, 1, 1)), 20000),
        ("w1_forward", forward_action(w1, batches(4, 1, 1)), 20000),
        ("w2_step", step_action(w2, batches(64, 10, 1)), 20000),
        ("w2_forward", forward_action(w2, batches(64, 10, 1)), 20000),
        ("w3_step", step_action(w3, batches(784, 10, 32)), 3000),
    ]

    medians = {}
    print(f"PyTorch {torch.__version__}, eager, {torch.get_num_threads()} thread, "
          f"{platform.processor() or platform.machine()}")
    print(f"{'workload':<12} {'median':>12} {'p10':>12} {'p90':>12} {'reps':>7}")
    for name, action, repetitions in workloads:
        repetitions = max(100, int(repetitions * args.scale))
        times = time_ns(action, repetitions, warmup=max(50, repetitions // 10))
        median = statistics.median(times)
        medians[name] = median
        print(f"{name:<12} {median / 1000:>9.2f} µs {percentile(times, 0.1) / 1000:>9.2f} µs "
              f"{percentile(times, 0.9) / 1000:>9.2f} µs {repetitions:>7}")

    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(),
                       "median_ns": medians}, out, indent=2)
            out.write("\n")


if __name__ == "__main__":
    main()
