#!/usr/bin/env python3
"""Reads criterion's results (`<target>/criterion/<group>/<bench>/new/estimates.json`) after
`cargo bench` and prints each benchmark's median as a Markdown table, with its ratio to the group's
`baseline` (to `X_baseline` for `X_generated` and `X_baseline_Y`) and, given the JSON of scripts/bench_torch.py, PyTorch's median over the bench's.

    cargo bench
    python3 scripts/bench_torch.py --json target/torch.json
    python3 scripts/bench_medians.py --torch target/torch.json [--target target]

Results older than an hour before the newest one are left out (stale benches of earlier runs).
"""

import argparse
import glob
import json
import os


def format_time(ns):
    """Nanoseconds in the unit that reads best."""
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def format_ratio(ratio):
    """A ratio with as many decimals as it needs: 2400, 21.6, 1.85."""
    if ratio >= 100:
        return f"{ratio:.0f}"
    if ratio >= 10:
        return f"{ratio:.1f}"
    return f"{ratio:.2f}"


def reference(bench, benches):
    """The bench a bench is compared with: `baseline_X` for `generated_X` when there is one, else
    `baseline`; `X_baseline` for `X_generated` and `X_baseline_Y` (the parts groups)."""
    if bench.startswith("generated_") and "baseline_" + bench[len("generated_"):] in benches:
        return "baseline_" + bench[len("generated_"):]
    if bench.startswith(("generated", "baseline")):
        return "baseline"
    return bench.split("_generated")[0].split("_baseline")[0] + "_baseline"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR", "target"),
                        help="cargo's target directory (default: $CARGO_TARGET_DIR or target)")
    parser.add_argument("--torch", help="the JSON written by scripts/bench_torch.py --json")
    args = parser.parse_args()

    found = []
    for path in glob.glob(os.path.join(args.target, "criterion", "*", "*", "new", "estimates.json")):
        with open(os.path.join(os.path.dirname(path), "benchmark.json"), encoding="utf-8") as f:
            ids = json.load(f)
        with open(path, encoding="utf-8") as f:
            median = json.load(f)["median"]
        found.append((os.path.getmtime(path), ids["group_id"], ids["function_id"], median))
    if not found:
        raise SystemExit(f"no criterion results under {args.target}/criterion; run `cargo bench`")
    newest = max(entry[0] for entry in found)
    groups = {}
    for mtime, group, bench, median in found:
        if mtime >= newest - 3600:
            groups.setdefault(group, {})[bench] = median

    torch = {}
    if args.torch:
        with open(args.torch, encoding="utf-8") as f:
            torch = json.load(f)["median_ns"]

    print("| group | bench | median | ÷ baseline | PyTorch ÷ this |")
    print("| --- | --- | ---: | ---: | ---: |")
    for group in sorted(groups):
        benches = groups[group]
        def key(bench):
            ref = reference(bench, benches)
            return (ref != "baseline", ref, "generated" not in bench, bench != ref, bench)

        for bench in sorted(benches, key=key):
            median = benches[bench]["point_estimate"]
            baseline = benches.get(reference(bench, benches), {}).get("point_estimate")
            ratio = f"{median / baseline:.2f}" if baseline else ""
            versus = f"{format_ratio(torch[group] / median)}×" if group in torch else ""
            print(f"| {group} | {bench} | {format_time(median)} | {ratio} | {versus} |")


if __name__ == "__main__":
    main()
