"""PyTorch fixtures that pin the optimizers' arithmetic bit for bit.

Writes tests/fixtures/optim_exact.json. Unlike gen_optim_fixtures.py (whole training steps, where
the backward pass's summation order differs from ours), each case here hands torch.optim fixed
gradients, so only the update rule is compared, to the last bit: parameters shaped like the seed
network's (4 => 5 => 2 => 1), in float64 and float32, six steps, some gradient entries exactly
zero. The configurations are gen_optim_fixtures.py's, and two more change a hyper-parameter
between steps (AMSGrad on, off, on again; momentum on, off, on again). Values are stored as the
hexadecimal bit patterns of the floats, row-major as PyTorch stores them.

ATEN_CPU_CAPABILITY=default (set below, before torch loads) makes ATen use its plain kernels: its
AVX2/AVX-512 kernels fuse multiplies and adds, which changes the last bits and which the
single-tensor Python algorithm does not ask for. And PyTorch's `Tensor.sqrt` (2.15 with MKL,
whatever the capability) is not correctly rounded: about 15 % of f32 inputs and 1.4 % of f64 ones
come out one unit off the exact root. Adam's `exp_avg_sq.sqrt()` is therefore replaced, while the
cases run, by the IEEE square root (numpy's, correctly rounded, as Rust's `sqrt` is); every other
operation is torch.optim's own, in its own order.

Run by hand (CI never does): pip install torch numpy; python3 scripts/gen_optim_exact_fixtures.py
"""

import json
import os
import pathlib

os.environ["ATEN_CPU_CAPABILITY"] = "default"

import numpy as np  # noqa: E402
import torch  # noqa: E402  (after the environment variable, which ATen reads when it loads)

from gen_optim_fixtures import OPTIMIZERS as STEP_BY_STEP_OPTIMIZERS  # noqa: E402

torch.set_num_threads(1)

SHAPES = {
    "fc1.weight": (5, 4),
    "fc1.bias": (5,),
    "fc2.weight": (2, 5),
    "fc2.bias": (2,),
    "fc3.weight": (1, 2),
    "fc3.bias": (1,),
}
STEPS = 6

# Every configuration the step-by-step fixtures use, and two whose hyper-parameters change between
# steps, as a user may change a param_group's entry.
OPTIMIZERS = {
    **STEP_BY_STEP_OPTIMIZERS,
    "adam_amsgrad_toggled": lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True, foreach=False),
    "sgd_momentum_toggled": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3, foreach=False),
}
SCHEDULES = {
    "adam_amsgrad_toggled": ("amsgrad", [True, True, False, False, True, True]),
    "sgd_momentum_toggled": ("momentum", [0.9, 0.9, 0.0, 0.0, 0.9, 0.9]),
}


def exact_sqrt(self):
    """The correctly rounded square root of every entry (IEEE 754's sqrt, through numpy)."""
    return torch.from_numpy(np.sqrt(self.detach().numpy()))


torch.Tensor.sqrt = exact_sqrt


def bits(tensor):
    """The tensor's values, row-major, as hexadecimal bit patterns."""
    flat = tensor.detach().reshape(-1)
    if flat.dtype == torch.float64:
        return [f"{v & 0xFFFFFFFFFFFFFFFF:016x}" for v in flat.view(torch.int64).tolist()]
    return [f"{v & 0xFFFFFFFF:08x}" for v in flat.view(torch.int32).tolist()]


def parameters(params):
    return {name: bits(p) for name, p in zip(SHAPES, params)}


cases = []
for dtype_name, dtype in [("f64", torch.float64), ("f32", torch.float32)]:
    for index, (name, make) in enumerate(OPTIMIZERS.items()):
        torch.manual_seed(1000 + index)
        params = [torch.randn(shape, dtype=dtype, requires_grad=True) for shape in SHAPES.values()]
        gradients = []
        for _ in range(STEPS):
            step = []
            for shape in SHAPES.values():
                g = torch.randn(shape, dtype=dtype) * 0.5
                g[torch.rand(shape) < 0.15] = 0.0  # exact zeros: weight decay and moments alone
                step.append(g)
            gradients.append(step)
        optimizer = make(params)
        case = {
            "name": f"{dtype_name}_{name}",
            "scalar": dtype_name,
            "optimizer": name,
            "initial": parameters(params),
            "gradients": [parameters(step) for step in gradients],
            "after": [],
        }
        if name in SCHEDULES:
            key, values = SCHEDULES[name]
            case["schedule"] = {"parameter": key, "values": values}
        for t, step in enumerate(gradients):
            if name in SCHEDULES:
                key, values = SCHEDULES[name]
                optimizer.param_groups[0][key] = values[t]
            for p, g in zip(params, step):
                p.grad = g.clone()
            optimizer.step()
            case["after"].append(parameters(params))
        cases.append(case)

path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "optim_exact.json"
document = {
    "torch_version": torch.__version__,
    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    "generator": "scripts/gen_optim_exact_fixtures.py",
    "steps": STEPS,
    "cases": cases,
}
path.write_text(json.dumps(document) + "\n")
print(f"wrote {len(cases)} cases to {path} (CPU capability {document['cpu_capability']})")
