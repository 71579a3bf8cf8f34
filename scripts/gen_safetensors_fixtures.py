#!/usr/bin/env python3
"""PyTorch <-> backprop weight files: safetensors fixtures, and a check of Rust-saved files.

Mode 1: write the fixtures (the default)
----------------------------------------
    pip install torch safetensors
    python3 scripts/gen_safetensors_fixtures.py

writes, relative to the repository root,

``tests/fixtures/torch_seed_f32.safetensors``
    the seed architecture ``4 => relu 5 => relu 2 => sigmoid 1`` as a module with
    named layers ``fc1``, ``fc2``, ``fc3`` (state_dict names ``fc1.weight``, ...), float32;
``tests/fixtures/torch_sequential_f32.safetensors``
    ``nn.Sequential(Linear(3, 8), ReLU(), Linear(8, 6), Tanh(), Linear(6, 2))`` in float32
    (state_dict names ``0.weight``, ``0.bias``, ``2.weight``, ..., ``4.bias``);
``tests/fixtures/torch_sequential_f64.safetensors``
    the same ``nn.Sequential`` in float64;
``tests/fixtures/torch_safetensors.json``
    for every file: the architecture in the ``network!`` notation, the dtype, every tensor's
    name, shape and values, four inputs and PyTorch's outputs for them.

Every file is written by ``safetensors.torch.save_file(model.state_dict(), path)``, exactly as
a PyTorch user would save a model.  The Rust tests (``tests/suite/io.rs``) load the files into
networks declared with ``network!`` and compare their outputs with PyTorch's; CI never runs this
script, its outputs are committed.

Determinism: each model reseeds with ``torch.manual_seed(seed)`` (its seed in ``MODELS``, chosen
so that the ReLU units are not all dead on the inputs), then draws its parameters (PyTorch's default ``nn.Linear`` init, first layer first), then the
inputs (``2 * torch.randn(4, IN)``).  One CPU thread.  Numbers go to JSON through ``.tolist()``:
a Python float holds a float32 exactly and its repr round-trips, so the JSON is exact.

Mode 2: check a file that Rust saved (by hand, never in CI)
------------------------------------------------------------
    cargo run --example import_torch -- --export target/rust_weights
    python3 scripts/gen_safetensors_fixtures.py --check target/rust_weights/*.safetensors

The example saves networks with ``backprop::io`` and records, in the file's ``__metadata__``,
the architecture (``backprop.architecture``, in the ``network!`` notation with layer names,
e.g. ``4 => fc1: relu 5 => fc2: relu 2 => fc3: sigmoid 1``), a few inputs
(``backprop.inputs``) and the outputs the Rust network computed for them
(``backprop.outputs``), both JSON lists of rows.  ``--check`` rebuilds the architecture in
PyTorch (a module with those layer names, or an ``nn.Sequential`` when the file's tensors are
named ``0.weight``, ``2.weight``, ...), loads the file with ``safetensors.torch.load_file`` and
``load_state_dict(strict=True)`` (so every name and shape must match), evaluates the inputs and
compares with Rust's outputs: 1e-6 relative (float32) or 1e-12 (float64), with a small absolute
floor.  It prints one line per file and exits with status 1 if any file fails.
"""

import json
import math
import os
import re
import sys

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file

torch.set_num_threads(1)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")
JSON_PATH = os.path.join(FIXTURES, "torch_safetensors.json")

DTYPES = {"float32": torch.float32, "float64": torch.float64}

# (name, file, architecture in the network! notation, layout, dtype, seed).  Layout "named": a module whose Linear layers are attributes fc1,
# fc2, ...; "sequential": an nn.Sequential of Linear layers each followed by its activation
# module (none for identity).
MODELS = [
    ("seed_f32", "torch_seed_f32.safetensors", "4 => relu 5 => relu 2 => sigmoid 1", "named", "float32", 5),
    ("sequential_f32", "torch_sequential_f32.safetensors", "3 => relu 8 => tanh 6 => 2", "sequential", "float32", 1),
    ("sequential_f64", "torch_sequential_f64.safetensors", "3 => relu 8 => tanh 6 => 2", "sequential", "float64", 2),
]

INPUT_ROWS = 4

# --------------------------------------------------------------------------
# The network! notation: "4 => relu 5 => fc2: leaky_relu(0.2) 2 => 1".
# --------------------------------------------------------------------------
STEP_RE = re.compile(r"^(?:([A-Za-z_][A-Za-z0-9_]*)\s*:\s*)?(?:([a-z_]+)(?:\(([-0-9.eE+]+)\))?\s+)?(\d+)$")


def parse_architecture(spec):
    """'4 => relu 5 => 2' -> (4, [(name, width, activation, argument), ...])."""
    pieces = [p.strip() for p in spec.split("=>")]
    inputs = int(pieces[0])
    layers = []
    for index, piece in enumerate(pieces[1:], start=1):
        m = STEP_RE.match(piece)
        if not m:
            raise ValueError(f"bad layer {piece!r} in {spec!r}")
        name = m.group(1) or f"fc{index}"
        activation = m.group(2) or "identity"
        argument = float(m.group(3)) if m.group(3) is not None else None
        layers.append((name, int(m.group(4)), activation, argument))
    return inputs, layers


def activation_module(activation, argument):
    """The nn module for an activation (PyTorch's definitions), or None for identity."""
    if activation == "identity":
        return None
    if activation == "relu":
        return nn.ReLU()
    if activation == "leaky_relu":
        return nn.LeakyReLU(0.01 if argument is None else argument)
    if activation == "sigmoid":
        return nn.Sigmoid()
    if activation == "tanh":
        return nn.Tanh()
    if activation == "softplus":
        return nn.Softplus(beta=1.0, threshold=20.0)
    if activation == "elu":
        return nn.ELU(1.0 if argument is None else argument)
    if activation == "gelu":
        return nn.GELU(approximate="none")
    if activation == "silu":
        return nn.SiLU()
    if activation == "softmax":
        return nn.Softmax(dim=-1)
    raise ValueError(f"unknown activation {activation!r}")


class Named(nn.Module):
    """Linear layers as named attributes (fc1, fc2, ...), each followed by its activation."""

    def __init__(self, inputs, layers, dtype):
        super().__init__()
        self.steps = []
        width = inputs
        for name, out, activation, argument in layers:
            setattr(self, name, nn.Linear(width, out, dtype=dtype))
            self.steps.append((name, activation_module(activation, argument)))
            width = out

    def forward(self, x):
        for name, activation in self.steps:
            x = getattr(self, name)(x)
            if activation is not None:
                x = activation(x)
        return x


def sequential(inputs, layers, dtype):
    """nn.Sequential(Linear, activation, Linear, ...), no module for an identity activation."""
    modules = []
    width = inputs
    for _, out, activation, argument in layers:
        modules.append(nn.Linear(width, out, dtype=dtype))
        module = activation_module(activation, argument)
        if module is not None:
            modules.append(module)
        width = out
    return nn.Sequential(*modules)


def build(spec, layout, dtype):
    inputs, layers = parse_architecture(spec)
    if layout == "named":
        return Named(inputs, layers, dtype), inputs
    if layout == "sequential":
        return sequential(inputs, layers, dtype), inputs
    raise ValueError(f"unknown layout {layout!r}")


# --------------------------------------------------------------------------
# Mode 1: fixtures.
# --------------------------------------------------------------------------
def generate():
    records = []
    for name, file, spec, layout, dtype_name, seed in MODELS:
        dtype = DTYPES[dtype_name]
        torch.manual_seed(seed)
        model, inputs = build(spec, layout, dtype)
        x = 2 * torch.randn(INPUT_ROWS, inputs, dtype=dtype)
        with torch.no_grad():
            y = model(x)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(FIXTURES, file))
        os.chmod(os.path.join(FIXTURES, file), 0o644)
        # Read the file back as a user would, to be sure it holds what we record.
        again = load_file(os.path.join(FIXTURES, file))
        assert sorted(again) == sorted(state), (sorted(again), sorted(state))
        for key, value in state.items():
            assert again[key].dtype == dtype and torch.equal(again[key], value), key
        records.append(
            {
                "name": name,
                "file": file,
                "architecture": spec,
                "layout": layout,
                "dtype": dtype_name,
                "seed": seed,
                "tensors": {
                    key: {"shape": list(value.shape), "values": value.tolist()}
                    for key, value in state.items()
                },
                "inputs": x.tolist(),
                "outputs": y.tolist(),
            }
        )
        print(f"wrote {file}: {spec} ({layout}, {dtype_name}), tensors {list(state)}")
    with open(JSON_PATH, "w") as f:
        json.dump({"torch_version": torch.__version__, "models": records}, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(JSON_PATH, REPO_ROOT)}")


# --------------------------------------------------------------------------
# Mode 2: check a Rust-saved file in PyTorch.
# --------------------------------------------------------------------------
def check(path):
    """Loads a Rust-saved file into PyTorch and compares outputs; returns True when they match."""
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
    missing = [k for k in ("backprop.architecture", "backprop.inputs", "backprop.outputs") if k not in metadata]
    if missing:
        print(f"FAIL {path}: no {', '.join(missing)} in the file's metadata (save it with the import_torch example's --export)")
        return False
    state = load_file(path)
    dtypes = {t.dtype for t in state.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (torch.float32, torch.float64):
        print(f"FAIL {path}: expected one float dtype, found {sorted(map(str, dtypes))}")
        return False
    dtype = next(iter(dtypes))
    spec = metadata["backprop.architecture"]
    layout = "sequential" if all(k.split(".")[0].isdigit() for k in state) else "named"
    model, _ = build(spec, layout, dtype)
    model.load_state_dict(state, strict=True)
    x = torch.tensor(json.loads(metadata["backprop.inputs"]), dtype=dtype)
    expected = json.loads(metadata["backprop.outputs"])
    with torch.no_grad():
        found = model(x).tolist()
    rtol, atol = (1e-6, 1e-9) if dtype == torch.float32 else (1e-12, 1e-15)
    worst = 0.0
    ok = True
    for i, (row_t, row_r) in enumerate(zip(found, expected)):
        for j, (t, r) in enumerate(zip(row_t, row_r)):
            error = abs(t - r)
            worst = max(worst, error / max(abs(t), 1e-300))
            if not error <= atol + rtol * abs(t):
                print(f"  sample {i} output {j}: PyTorch {t!r}, Rust {r!r}")
                ok = False
    shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in sorted(state.items()))
    verdict = "ok  " if ok else "FAIL"
    print(f"{verdict} {path}: {spec} as {layout} {str(dtype)[6:]} ({shapes}); worst relative difference {worst:.2e}")
    return ok


def main(argv):
    if len(argv) >= 2 and argv[1] == "--check":
        if len(argv) < 3:
            print(__doc__)
            return 2
        results = [check(path) for path in argv[2:]]
        return 0 if all(results) else 1
    if len(argv) > 1:
        print(__doc__)
        return 2
    generate()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
