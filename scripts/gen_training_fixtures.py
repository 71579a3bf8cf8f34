"""PyTorch fixtures for issue 16's training tools: RMSprop and Adagrad, learning-rate schedules,
gradient clipping.

Writes tests/fixtures/training.json, read by tests/suite/training_optim.rs. As gen_optim_exact_fixtures.py
does, every case hands torch fixed gradients for parameters shaped like the seed network's
(4 => 5 => 2 => 1), so only the update rule (and the schedule, and the clipping) is compared:

- "optimizers": RMSprop and Adagrad with every option, 10 steps, float64 and float32, values as
  hexadecimal bit patterns (row-major, as PyTorch stores them);
- "schedules": StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR (past T_max, through its
  restart branch), LinearLR, OneCycleLR (cos and linear, two and three phases, with and without
  momentum cycling)
  and SequentialLR, each with SGD (momentum) and with Adam, 14 steps in float64 (bit patterns
  too: serde_json's default float parsing is not correctly rounded): the learning rate
  after construction and after every scheduler.step(), and the parameters after every
  optimizer.step() (torch's order: optimizer.step(), then scheduler.step());
- "clipping": clip_grad_norm_ (max_norm 1, error_if_nonfinite) and clip_grad_value_ (0.3), 5 steps
  each followed by an SGD step, float64 and float32: the total norm, the clipped gradients and the
  parameters.

ATEN_CPU_CAPABILITY=default and the IEEE square root replace ATen's fused kernels and its
not-correctly-rounded sqrt, as in gen_optim_exact_fixtures.py (RMSprop's centered form also calls
the in-place `sqrt_`, replaced the same way).

Run by hand (CI never does): pip install torch numpy; python3 scripts/gen_training_fixtures.py
"""

import json
import os
import pathlib
import struct

os.environ["ATEN_CPU_CAPABILITY"] = "default"

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

SHAPES = {
    "fc1.weight": (5, 4),
    "fc1.bias": (5,),
    "fc2.weight": (2, 5),
    "fc2.bias": (2,),
    "fc3.weight": (1, 2),
    "fc3.bias": (1,),
}


def exact_sqrt(self):
    """The correctly rounded square root of every entry (IEEE 754's sqrt, through numpy)."""
    return torch.from_numpy(np.sqrt(self.detach().numpy()))


def exact_sqrt_(self):
    """The in-place form of exact_sqrt."""
    with torch.no_grad():
        self.copy_(exact_sqrt(self))
    return self


torch.Tensor.sqrt = exact_sqrt
torch.Tensor.sqrt_ = exact_sqrt_


def bits(tensor):
    flat = tensor.detach().reshape(-1)
    if flat.dtype == torch.float64:
        return [f"{v & 0xFFFFFFFFFFFFFFFF:016x}" for v in flat.view(torch.int64).tolist()]
    return [f"{v & 0xFFFFFFFF:08x}" for v in flat.view(torch.int32).tolist()]


def momentum_of(optimizer):
    """SGD's momentum or Adam's beta1."""
    group = optimizer.param_groups[0]
    return group["betas"][0] if "betas" in group else group["momentum"]


def rate_bits(rate):
    """A Python float's bit pattern, hexadecimal."""
    return f"{struct.unpack('<Q', struct.pack('<d', rate))[0]:016x}"


def as_dict(tensors, encode):
    return {name: encode(t) for name, t in zip(SHAPES, tensors)}


def make_case(seed, dtype, steps, scale=0.5):
    torch.manual_seed(seed)
    params = [torch.randn(shape, dtype=dtype, requires_grad=True) for shape in SHAPES.values()]
    gradients = []
    for step in range(steps):
        grads = []
        for shape in SHAPES.values():
            g = torch.randn(shape, dtype=dtype) * scale * (1 + step % 3)
            g[torch.rand(shape) < 0.15] = 0.0
            grads.append(g)
        gradients.append(grads)
    return params, gradients


OPTIMIZERS = {
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01, foreach=False),
    "rmsprop_centered": lambda p: torch.optim.RMSprop(p, lr=0.01, centered=True, foreach=False),
    "rmsprop_momentum": lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9, foreach=False),
    "rmsprop_weight_decay": lambda p: torch.optim.RMSprop(p, lr=0.01, weight_decay=0.1, foreach=False),
    # 1 − alpha ≥ 0.5: ATen's lerp takes its other branch.
    "rmsprop_low_alpha_centered": lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.3, centered=True, foreach=False),
    "rmsprop_all": lambda p: torch.optim.RMSprop(
        p, lr=0.02, alpha=0.9, eps=1e-6, weight_decay=0.05, momentum=0.5, centered=True, foreach=False
    ),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.1, foreach=False),
    "adagrad_lr_decay": lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.05, foreach=False),
    "adagrad_initial_accumulator": lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.3, foreach=False),
    "adagrad_all": lambda p: torch.optim.Adagrad(
        p, lr=0.1, lr_decay=0.05, weight_decay=0.02, initial_accumulator_value=0.3, eps=1e-6, foreach=False
    ),
}

S = torch.optim.lr_scheduler
SCHEDULES = {
    "step": lambda o, lr: S.StepLR(o, step_size=3, gamma=0.5),
    "multi_step": lambda o, lr: S.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
    "exponential": lambda o, lr: S.ExponentialLR(o, gamma=0.8),
    "cosine": lambda o, lr: S.CosineAnnealingLR(o, T_max=5, eta_min=lr / 100),
    "linear": lambda o, lr: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4),
    "one_cycle": lambda o, lr: S.OneCycleLR(o, max_lr=5 * lr, total_steps=14, cycle_momentum=False),
    "one_cycle_linear_three_phase": lambda o, lr: S.OneCycleLR(
        o, max_lr=5 * lr, total_steps=14, pct_start=0.4, anneal_strategy="linear", div_factor=10.0,
        final_div_factor=100.0, three_phase=True, cycle_momentum=False,
    ),
    # torch's default cycle_momentum=True: SGD's momentum, Adam's beta1 between 0.85 and 0.95.
    "one_cycle_momentum": lambda o, lr: S.OneCycleLR(o, max_lr=5 * lr, total_steps=14),
    "one_cycle_momentum_three_phase": lambda o, lr: S.OneCycleLR(
        o, max_lr=5 * lr, total_steps=14, three_phase=True, base_momentum=0.8, max_momentum=0.9,
    ),
    "sequential_warmup_cosine": lambda o, lr: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=3), S.CosineAnnealingLR(o, T_max=8, eta_min=0.0)],
        milestones=[3],
    ),
    "sequential_three": lambda o, lr: S.SequentialLR(
        o, [S.ExponentialLR(o, gamma=0.9), S.StepLR(o, step_size=2, gamma=0.5), S.MultiStepLR(o, milestones=[1, 3], gamma=0.1)],
        milestones=[4, 8],
    ),
}
SCHEDULE_OPTIMIZERS = {
    "sgd": (0.1, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, foreach=False)),
    "adam": (0.01, lambda p: torch.optim.Adam(p, lr=0.01, foreach=False)),
}

document = {
    "torch_version": torch.__version__,
    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    "generator": "scripts/gen_training_fixtures.py",
    "optimizers": [],
    "schedules": [],
    "clipping": [],
}

for dtype_name, dtype in [("f64", torch.float64), ("f32", torch.float32)]:
    for index, (name, make) in enumerate(OPTIMIZERS.items()):
        params, gradients = make_case(2000 + index, dtype, 10)
        optimizer = make(params)
        case = {
            "name": f"{dtype_name}_{name}",
            "scalar": dtype_name,
            "optimizer": name,
            "initial": as_dict(params, bits),
            "gradients": [as_dict(g, bits) for g in gradients],
            "after": [],
        }
        for grads in gradients:
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
            case["after"].append(as_dict(params, bits))
        document["optimizers"].append(case)

for index, (name, make_schedule) in enumerate(SCHEDULES.items()):
    for opt_name, (lr, make) in SCHEDULE_OPTIMIZERS.items():
        params, gradients = make_case(3000 + index, torch.float64, 14)
        optimizer = make(params)
        scheduler = make_schedule(optimizer, lr)
        case = {
            "name": f"{name}_{opt_name}",
            "schedule": name,
            "optimizer": opt_name,
            "initial": as_dict(params, bits),
            "gradients": [as_dict(g, bits) for g in gradients],
            "lrs": [rate_bits(optimizer.param_groups[0]["lr"])],
            "momenta": [rate_bits(momentum_of(optimizer))],
            "after": [],
        }
        for grads in gradients:
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
            case["after"].append(as_dict(params, bits))
            scheduler.step()
            case["lrs"].append(rate_bits(optimizer.param_groups[0]["lr"]))
            case["momenta"].append(rate_bits(momentum_of(optimizer)))
        document["schedules"].append(case)

for dtype_name, dtype in [("f64", torch.float64), ("f32", torch.float32)]:
    for index, kind in enumerate(["norm", "value"]):
        params, gradients = make_case(4000 + index, dtype, 5, scale=0.1)
        optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, foreach=False)
        case = {
            "name": f"{dtype_name}_{kind}",
            "scalar": dtype_name,
            "kind": kind,
            "initial": as_dict(params, bits),
            "gradients": [as_dict(g, bits) for g in gradients],
            "norms": [],
            "clipped": [],
            "after": [],
        }
        for grads in gradients:
            for p, g in zip(params, grads):
                p.grad = g.clone()
            if kind == "norm":
                norm = torch.nn.utils.clip_grad_norm_(params, max_norm=1.0, error_if_nonfinite=True, foreach=False)
                case["norms"].append(float(norm))
            else:
                torch.nn.utils.clip_grad_value_(params, clip_value=0.3, foreach=False)
            case["clipped"].append(as_dict([p.grad for p in params], bits))
            optimizer.step()
            case["after"].append(as_dict(params, bits))
        document["clipping"].append(case)

path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "training.json"
path.write_text(json.dumps(document) + "\n")
print(
    f"wrote {len(document['optimizers'])} optimizer, {len(document['schedules'])} schedule and "
    f"{len(document['clipping'])} clipping cases to {path}"
)
