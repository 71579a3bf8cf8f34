#!/usr/bin/env python3
"""Generate PyTorch fixtures for derivatives with respect to the input.

What it writes
--------------
``tests/fixtures/jacobian.json``: for every case (a stack of ``nn.Linear``
layers with activations, in the notation of ``gen_parity_fixtures.py``), the
parameters, an input batch, and what PyTorch computes for it:

* ``jacobian``: per sample, ``torch.autograd.functional.jacobian`` of the
  network's one-sample function, ``[OUT][IN]``;
* ``jvp``: ``torch.autograd.functional.jvp`` of the batch function along a
  random tangent ``v`` (``[B][IN]``), and the outputs;
* ``vjp``: ``torch.autograd.functional.vjp`` along a random cotangent ``u``
  (``[B][OUT]``);
* ``input_gradient``: ``torch.autograd.grad`` of the case's loss (PyTorch's
  default reduction) with respect to the input batch, and the loss.

How to run it
-------------
    pip install torch numpy
    python3 scripts/gen_jacobian_fixtures.py

CI never runs this script; its output is committed.  Each case reseeds with
``torch.manual_seed(index)`` and draws the parameters (default ``nn.Linear``
init, fc1 first), then ``x``, ``v``, ``u`` and the target, in that order.
"""

import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_parity_fixtures import (  # noqa: E402
    DTYPES,
    apply_activation,
    check_finite,
    make_loss_fn,
    make_target,
    parse_network,
    to_json,
)

torch.set_num_threads(1)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT_PATH = os.path.join(REPO_ROOT, "tests", "fixtures", "jacobian.json")

# (name, network, loss, batch, dtype); every activation appears, softmax both
# hidden and at the output, and both shapes (IN < OUT: forward mode; IN >= OUT:
# reverse mode).
CASES = [
    ("seed_f64", "4 => relu 5 => relu 2 => sigmoid 1", "mse", 3, "float64"),
    ("seed_f32", "4 => relu 5 => relu 2 => sigmoid 1", "mse", 2, "float32"),
    ("tanh_wide_out_f64", "2 => tanh 6 => 5", "mse", 2, "float64"),
    ("dynamics_f32", "6 => tanh 32 => 4", "mse", 2, "float32"),
    ("leaky_elu_f64", "3 => leaky_relu(0.2) 5 => elu 4 => 3", "huber", 3, "float64"),
    ("softplus_gelu_f32", "5 => softplus 6 => gelu 4 => 2", "l1", 2, "float32"),
    ("silu_softmax_out_f64", "3 => silu 5 => softmax 4", "mse", 2, "float64"),
    ("softmax_hidden_f32", "4 => softmax 3 => sigmoid 6", "bce", 2, "float32"),
    ("leaky_default_elu_arg_f32", "2 => leaky_relu 4 => elu(0.5) 7", "sse", 1, "float32"),
    ("identity_deep_f64", "3 => identity 4 => tanh 4 => sigmoid 4 => 2", "half_sse", 2, "float64"),
    ("mid_f64", "64 => relu 32 => sigmoid 10", "mse", 2, "float64"),
]


def run_case(index, name, spec, loss, batch, dtype_name):
    dtype = DTYPES[dtype_name]
    inputs, layer_specs = parse_network(spec)
    torch.manual_seed(index)
    linears, layers_json, fan_in = [], [], inputs
    for i, (width, act, alpha) in enumerate(layer_specs, start=1):
        linears.append(nn.Linear(fan_in, width, dtype=dtype))
        layers_json.append(
            {"name": f"fc{i}", "in": fan_in, "out": width, "activation": act, "alpha": alpha}
        )
        fan_in = width
    outputs = fan_in

    def net(h):
        for (width, act, alpha), linear in zip(layer_specs, linears):
            h = apply_activation(act, alpha, linear(h))
        return h

    x = torch.randn(batch, inputs, dtype=dtype)
    v = torch.randn(batch, inputs, dtype=dtype)
    u = torch.randn(batch, outputs, dtype=dtype)
    target = make_target(loss, batch, outputs, dtype)

    with torch.no_grad():
        output = net(x)
    jacobians = [
        torch.autograd.functional.jacobian(lambda s: net(s.unsqueeze(0)).squeeze(0), x[k]).tolist()
        for k in range(batch)
    ]
    jvp_out, jvp = torch.autograd.functional.jvp(net, x, v)
    vjp_out, vjp = torch.autograd.functional.vjp(net, x, u)
    xg = x.clone().requires_grad_(True)
    loss_value = make_loss_fn(loss)(net(xg), target)
    (input_gradient,) = torch.autograd.grad(loss_value, xg)

    params = {}
    for linear, meta in zip(linears, layers_json):
        for pname in ("weight", "bias"):
            params[f"{meta['name']}.{pname}"] = getattr(linear, pname).detach().tolist()
    case = {
        "name": name,
        "network": spec,
        "dtype": dtype_name,
        "batch": batch,
        "inputs": inputs,
        "outputs": outputs,
        "layers": layers_json,
        "loss": loss,
        "params": params,
        "input": x.tolist(),
        "v": v.tolist(),
        "u": u.tolist(),
        "target": target.tolist(),
        "output": output.tolist(),
        "jacobian": jacobians,
        "jvp": jvp.tolist(),
        "vjp": vjp.tolist(),
        "loss_value": loss_value.item(),
        "input_gradient": input_gradient.tolist(),
    }
    assert torch.equal(jvp_out, output) and torch.equal(vjp_out, output), name
    check_finite(case, name)
    return case


def main():
    cases = [run_case(i, *spec) for i, spec in enumerate(CASES)]
    document = {"torch_version": torch.__version__, "cases": cases}
    with open(OUTPUT_PATH, "w") as f:
        f.write(to_json(document) + "\n")
    print(f"wrote {len(cases)} cases to {OUTPUT_PATH}")


if __name__ == "__main__":
    main()
