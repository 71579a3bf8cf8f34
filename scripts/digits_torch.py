"""The digits recipe of `examples/digits.rs` in PyTorch, for comparison.

`64 => relu 32 => 10` logits, CrossEntropyLoss(label_smoothing=S), Adam lr 1e-2, batches of 32,
45 epochs on rows 0..1500 of examples/data/digits.csv.gz (pixels / 16), accuracy on rows
1500..1797 (or, with --validate, trained on 0..1200 and tested on 1200..1500). One CPU thread.

    pip install torch numpy
    python3 scripts/digits_torch.py [--seeds 20] [--epochs 45] [--smoothing 0 0.1] [--validate]

Prints each seed's accuracy and the mean, minimum and maximum per smoothing value.
"""

import argparse
import gzip
import pathlib
import time

import numpy as np
import torch

DATA = pathlib.Path(__file__).resolve().parent.parent / "examples" / "data" / "digits.csv.gz"


def load():
    with gzip.open(DATA, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return torch.from_numpy(rows[:, :64] / 16.0), torch.from_numpy(rows[:, 64]).long()


def run(seed, smoothing, train_x, train_y, test_x, test_y, epochs):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    adam = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(train_x))
        for i in range(0, len(order), 32):
            batch = order[i : i + 32]
            adam.zero_grad()
            loss_fn(net(train_x[batch]), train_y[batch]).backward()
            adam.step()
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        accuracy = (net(test_x).argmax(1) == test_y).float().mean().item()
    return accuracy, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=45)
    parser.add_argument("--smoothing", type=float, nargs="+", default=[0.0, 0.1])
    parser.add_argument("--validate", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y = load()
    train, held_out = (slice(0, 1200), slice(1200, 1500)) if args.validate else (slice(0, 1500), slice(1500, None))
    for smoothing in args.smoothing:
        results = [run(s, smoothing, x[train], y[train], x[held_out], y[held_out], args.epochs) for s in range(args.seeds)]
        accuracies = [a for a, _ in results]
        print(
            f"label_smoothing={smoothing}: mean {np.mean(accuracies):.4f} min {min(accuracies):.4f} "
            f"max {max(accuracies):.4f}, {sum(a >= 0.92 for a in accuracies)}/{len(accuracies)} >= 0.92, "
            f"median train time {np.median([t for _, t in results]):.2f} s"
        )
        print("  " + " ".join(f"{a:.4f}" for a in accuracies))


if __name__ == "__main__":
    main()
