#!/usr/bin/env python3
"""Generate PyTorch parity fixtures for the `backprop` crate.

What it writes
--------------
``tests/fixtures/parity.json`` (relative to the repository root): 25 small
multilayer perceptrons (stacks of ``nn.Linear`` layers, each followed by an
activation) with a loss on top.  For every case the file records the
parameters PyTorch initialised, the input batch, the target, every layer's
pre-activation and activation, the network output, the loss value and the
gradient of the loss with respect to every parameter.  The Rust test suite
rebuilds each network with these exact parameters and checks that its forward
and backward passes agree with PyTorch's.

How to run it
-------------
    pip install torch numpy
    python3 scripts/gen_parity_fixtures.py

CI never runs this script; its output is committed.  Re-run it only when a
case is added or changed, and commit the regenerated JSON together with the
script.

Determinism
-----------
Every case reseeds the global generator with ``torch.manual_seed(index)``
(its 0-based position in ``CASES``) and then draws, in this order:

1. the layers' parameters (PyTorch's default ``nn.Linear`` init, built
   directly in the case's dtype with ``dtype=...``), fc1 first;
2. the input, ``torch.randn(B, IN)``;
3. the target (see ``make_target``).

Everything runs on the CPU with one thread, so the output depends only on the
PyTorch version (recorded in the file as ``torch_version``).

Exactness
---------
Tensors are converted with ``.tolist()``; a float32 value is held exactly by a
Python float, and Python's float repr round-trips, so every number in the
JSON is the exact value PyTorch computed (in the case's dtype).
"""

import json
import math
import os
import re
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT_PATH = os.path.join(REPO_ROOT, "tests", "fixtures", "parity.json")

# --------------------------------------------------------------------------
# Cases.  Network notation: "IN => act WIDTH => act WIDTH => ..."; each
# "act WIDTH" step is one nn.Linear layer with WIDTH outputs followed by
# `act`.  A step written without an activation ("=> 2") is the identity.
# `leaky_relu(0.2)` / `elu(0.5)` give the activation's alpha explicitly.
# The order of this list matters: a case's index is its seed.
# --------------------------------------------------------------------------
CASES = [
    # (name, network, loss, batch, dtype)
    ("seed_f64_b1", "4 => relu 5 => relu 2 => sigmoid 1", "mse", 1, "float64"),
    ("seed_f32_b8", "4 => relu 5 => relu 2 => sigmoid 1", "mse", 8, "float32"),
    ("d1_identity_mse_f64_b3", "3 => 2", "mse", 3, "float64"),
    ("d1_sigmoid_bce_f32_b4", "5 => sigmoid 1", "bce", 4, "float32"),
    ("d2_tanh_l1_f64_b5", "3 => tanh 6 => 2", "l1", 5, "float64"),
    ("d2_leaky_huber_f32_b6", "4 => leaky_relu 7 => 3", "huber", 6, "float32"),
    ("d2_leaky_arg_huber_f64_b2", "4 => leaky_relu(0.2) 5 => tanh 2", "huber", 2, "float64"),
    ("d3_softplus_sse_f64_b1", "2 => softplus 4 => softplus 3 => 1", "sse", 1, "float64"),
    ("d3_elu_half_sse_f32_b3", "3 => elu 4 => elu(0.5) 4 => 2", "half_sse", 3, "float32"),
    ("d2_gelu_ce_index_f64_b4", "6 => gelu 8 => 4", "cross_entropy_index", 4, "float64"),
    ("d2_silu_ce_prob_f32_b5", "5 => silu 6 => 3", "cross_entropy_prob", 5, "float32"),
    ("d2_softmax_mse_f64_b3", "4 => tanh 5 => softmax 3", "mse", 3, "float64"),
    ("d4_mixed_bce_logits_f64_b7", "5 => relu 8 => tanh 6 => silu 4 => 2", "bce_with_logits", 7, "float64"),
    ("d4_mixed_ce_index_f32_b1", "3 => gelu 5 => elu 5 => leaky_relu 4 => 3", "cross_entropy_index", 1, "float32"),
    ("d2_softmax_hidden_bce_f64_b4", "3 => softmax 4 => sigmoid 2", "bce", 4, "float64"),
    ("d3_sigmoid_l1_f32_b2", "4 => sigmoid 3 => sigmoid 3 => 2", "l1", 2, "float32"),
    ("d2_relu_bce_logits_f32_b1", "6 => relu 4 => 1", "bce_with_logits", 1, "float32"),
    ("d3_softplus_gelu_huber_f64_b8", "3 => softplus 5 => gelu 3 => 1", "huber", 8, "float64"),
    ("d2_identity_sse_f32_b4", "2 => identity 3 => 2", "sse", 4, "float32"),
    ("d4_tanh_half_sse_f64_b2", "4 => tanh 4 => tanh 4 => tanh 4 => 2", "half_sse", 2, "float64"),
    ("d1_ce_index_f32_b6", "5 => 4", "cross_entropy_index", 6, "float32"),
    ("d3_silu_mse_f64_b16", "8 => silu 10 => relu 6 => sigmoid 2", "mse", 16, "float64"),
    ("d2_elu_arg_bce_f32_b3", "3 => elu(2.0) 4 => sigmoid 2", "bce", 3, "float32"),
    ("d3_gelu_ce_prob_f64_b1", "4 => gelu 6 => silu 5 => 3", "cross_entropy_prob", 1, "float64"),
    ("d2_leaky_arg_mse_f32_b5", "3 => leaky_relu(0.2) 4 => elu 3 => 2", "mse", 5, "float32"),
]

DTYPES = {"float32": torch.float32, "float64": torch.float64}

# Default alpha for the activations that take one (PyTorch's defaults).
DEFAULT_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}


# --------------------------------------------------------------------------
# Activations: exactly the PyTorch functions, default arguments unless noted.
# --------------------------------------------------------------------------
def apply_activation(name, alpha, x):
    if name == "identity":
        return x
    if name == "relu":
        return F.relu(x)
    if name == "leaky_relu":
        return F.leaky_relu(x, negative_slope=alpha)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "softplus":
        return F.softplus(x, beta=1.0, threshold=20.0)
    if name == "elu":
        return F.elu(x, alpha=alpha)
    if name == "gelu":
        return F.gelu(x, approximate="none")
    if name == "silu":
        return F.silu(x)
    if name == "softmax":
        # Across one sample's units (the last dimension of [B][units]).
        return F.softmax(x, dim=-1)
    raise ValueError(f"unknown activation {name!r}")


# --------------------------------------------------------------------------
# Losses and their targets.  All use PyTorch's default reduction ('mean')
# unless the loss is defined as a sum.
# --------------------------------------------------------------------------
def make_loss_fn(loss):
    if loss == "mse":
        return nn.MSELoss()
    if loss == "l1":
        return nn.L1Loss()
    if loss == "huber":
        return nn.HuberLoss(delta=1.0)
    if loss == "bce":
        return nn.BCELoss()
    if loss == "bce_with_logits":
        return nn.BCEWithLogitsLoss()
    if loss in ("cross_entropy_index", "cross_entropy_prob"):
        return nn.CrossEntropyLoss()
    if loss == "sse":
        return nn.MSELoss(reduction="sum")
    if loss == "half_sse":
        sse = nn.MSELoss(reduction="sum")
        return lambda output, target: 0.5 * sse(output, target)
    raise ValueError(f"unknown loss {loss!r}")


def make_target(loss, batch, out, dtype):
    """Draw the target from the global generator (after the input)."""
    if loss in ("mse", "l1", "sse", "half_sse"):
        return 2 * torch.randn(batch, out, dtype=dtype)
    if loss == "huber":
        # Wider spread so that some residuals exceed delta = 1.
        return 3 * torch.randn(batch, out, dtype=dtype)
    if loss in ("bce", "bce_with_logits"):
        # Probabilities in [0, 1).
        return torch.rand(batch, out, dtype=dtype)
    if loss == "cross_entropy_index":
        # Class indices (int64), one per sample.
        return torch.randint(0, out, (batch,))
    if loss == "cross_entropy_prob":
        # Probability targets: each row sums to 1.
        return F.softmax(torch.randn(batch, out, dtype=dtype), dim=-1)
    raise ValueError(f"unknown loss {loss!r}")


# --------------------------------------------------------------------------
# Parsing the network notation.
# --------------------------------------------------------------------------
STEP_RE = re.compile(r"^(?:([a-z_]+)(?:\(([-0-9.eE+]+)\))?\s+)?(\d+)$")


def parse_network(spec):
    """'4 => relu 5 => leaky_relu(0.2) 2' -> (4, [(5, 'relu', None), ...])."""
    pieces = [p.strip() for p in spec.split("=>")]
    inputs = int(pieces[0])
    layers = []
    for piece in pieces[1:]:
        m = STEP_RE.match(piece)
        assert m, f"bad layer step {piece!r} in {spec!r}"
        act, arg, width = m.group(1) or "identity", m.group(2), int(m.group(3))
        if act in DEFAULT_ALPHA:
            alpha = float(arg) if arg is not None else DEFAULT_ALPHA[act]
        else:
            assert arg is None, f"{act} takes no argument ({spec!r})"
            alpha = None
        layers.append((width, act, alpha))
    return inputs, layers


# --------------------------------------------------------------------------
# One case.
# --------------------------------------------------------------------------
def run_case(index, name, spec, loss, batch, dtype_name):
    dtype = DTYPES[dtype_name]
    inputs, layer_specs = parse_network(spec)

    if loss == "bce":
        assert layer_specs[-1][1] == "sigmoid", f"{name}: bce needs a sigmoid output"

    torch.manual_seed(index)

    # 1. Parameters: default nn.Linear init, built in the case's dtype.
    linears = []
    layers_json = []
    fan_in = inputs
    for i, (width, act, alpha) in enumerate(layer_specs, start=1):
        linears.append(nn.Linear(fan_in, width, dtype=dtype))
        layers_json.append(
            {"name": f"fc{i}", "in": fan_in, "out": width, "activation": act, "alpha": alpha}
        )
        fan_in = width
    outputs = fan_in

    # 2. Input, 3. target.
    x = torch.randn(batch, inputs, dtype=dtype)
    target = make_target(loss, batch, outputs, dtype)

    # Forward, keeping every layer's pre-activation and activation.
    pre_activations = {}
    activations = {}
    h = x
    for (width, act, alpha), linear, meta in zip(layer_specs, linears, layers_json):
        z = linear(h)
        h = apply_activation(act, alpha, z)
        pre_activations[meta["name"]] = z
        activations[meta["name"]] = h
    output = h

    loss_value = make_loss_fn(loss)(output, target)
    assert loss_value.dtype == dtype
    loss_value.backward()

    params = {}
    grads = {}
    for linear, meta in zip(linears, layers_json):
        for pname in ("weight", "bias"):
            p = getattr(linear, pname)
            params[f"{meta['name']}.{pname}"] = p.detach().tolist()
            grads[f"{meta['name']}.{pname}"] = p.grad.tolist()

    case = {
        "name": name,
        "dtype": dtype_name,
        "batch": batch,
        "inputs": inputs,
        "layers": layers_json,
        "loss": loss,
        "params": params,
        "input": x.tolist(),
        "target": target.tolist(),
        "pre_activations": {k: v.detach().tolist() for k, v in pre_activations.items()},
        "activations": {k: v.detach().tolist() for k, v in activations.items()},
        "output": output.detach().tolist(),
        "loss_value": loss_value.item(),
        "grads": grads,
    }
    check_finite(case, name)
    report_oddities(case, layer_specs, linears)
    return case


def check_finite(value, where):
    """Assert that no float anywhere in `value` is NaN or infinite."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_finite(v, f"{where}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), f"non-finite value at {where}: {value}"


def flat(v):
    if isinstance(v, list):
        for item in v:
            yield from flat(item)
    else:
        yield v


def report_oddities(case, layer_specs, linears):
    """Print things worth knowing on stderr (they do not stop the script)."""
    name = case["name"]
    for (width, act, alpha), meta in zip(layer_specs, case["layers"]):
        z = list(flat(case["pre_activations"][meta["name"]]))
        if act in ("relu", "leaky_relu", "elu") and any(v == 0.0 for v in z):
            print(f"note: {name}: {meta['name']} has a pre-activation exactly at the {act} kink",
                  file=sys.stderr)
        if act == "relu" and all(v <= 0.0 for v in z):
            print(f"note: {name}: {meta['name']} relu is dead on the whole batch", file=sys.stderr)
        if act == "softplus" and any(v > 20.0 for v in z):
            print(f"note: {name}: {meta['name']} softplus passes the threshold", file=sys.stderr)
    for key, g in case["grads"].items():
        if all(v == 0.0 for v in flat(g)):
            print(f"note: {name}: gradient {key} is all zeros", file=sys.stderr)
    if case["loss"] == "huber":
        res = [abs(o - t) for o, t in zip(flat(case["output"]), flat(case["target"]))]
        n_big = sum(r > 1.0 for r in res)
        print(f"note: {name}: huber residuals > delta: {n_big} of {len(res)}", file=sys.stderr)


# --------------------------------------------------------------------------
# Output: indented objects, but each innermost list of numbers on one line,
# which keeps the file small and still readable in a diff.
# --------------------------------------------------------------------------
def to_json(value, indent=0):
    pad = " " * indent
    inner = " " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
        items = [inner + to_json(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    # Scalars and flat lists: plain json.dumps (float repr round-trips).
    return json.dumps(value, allow_nan=False)


def main():
    cases = [run_case(i, *spec) for i, spec in enumerate(CASES)]
    doc = {
        "description": (
            "PyTorch parity fixtures for backprop: per case, a stack of nn.Linear layers "
            "(default init, seeded with torch.manual_seed(case index), built in the case's "
            "dtype), each followed by an activation, then a loss with PyTorch's default "
            "reduction (sse = MSELoss(reduction='sum'), half_sse = 0.5 * sse). Draw order: "
            "parameters fc1..fcN, input randn(batch, inputs), target. Weight matrices are "
            "[out][in] as PyTorch stores them; input/pre_activations/activations/output are "
            "[batch][units]; target is [batch][outputs], or a list of class indices for "
            "cross_entropy_index. alpha is the leaky_relu negative slope / elu alpha, null "
            "for other activations. softmax activations act across a sample's units. "
            "All floats are the exact values computed in the case's dtype."
        ),
        "torch_version": torch.__version__,
        "generator": "scripts/gen_parity_fixtures.py",
        "cases": cases,
    }
    # Round-trip check: the text parses back to exactly the same values.
    text = to_json(doc) + "\n"
    assert json.loads(text) == json.loads(json.dumps(doc)), "JSON round-trip mismatch"
    os.makedirs(os.path.dirname(OUTPUT_PATH), exist_ok=True)
    with open(OUTPUT_PATH, "w") as f:
        f.write(text)
    print(f"wrote {len(cases)} cases to {os.path.relpath(OUTPUT_PATH, REPO_ROOT)}")


if __name__ == "__main__":
    main()
