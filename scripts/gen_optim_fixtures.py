"""PyTorch fixtures for the optimizers: torch.optim's parameters after each of three steps.

Writes tests/fixtures/optim.json. Two architectures, in float64 with PyTorch's default nn.Linear
initialisation (torch.manual_seed(case index)):
  seed:  4 => relu 5 => relu 2 => sigmoid 1, MSE, a batch of 3
  deep:  6 => tanh 8 => relu 7 => gelu 5 => 3, CrossEntropy with class targets, a batch of 4
Every optimizer runs its single-tensor implementation (foreach=False, as on CPU by default).
For every optimizer configuration below, the model is rebuilt from the same seed, and three steps
are taken on the same batch (zero_grad, forward, loss, backward, step), recording the parameters
after every step. Names follow the Rust networks (fc1.weight ...).

Run by hand (CI never does): pip install torch numpy; python3 scripts/gen_optim_fixtures.py
"""

import json
import pathlib

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
dtype = torch.float64

ARCHITECTURES = {
    "seed": {"widths": [4, 5, 2, 1], "activations": ["relu", "relu", "sigmoid"], "loss": "mse", "batch": 3},
    "deep": {"widths": [6, 8, 7, 5, 3], "activations": ["tanh", "relu", "gelu", "identity"], "loss": "cross_entropy_index", "batch": 4},
}

OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1, foreach=False),
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, foreach=False),
    "sgd_momentum_dampening": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3, foreach=False),
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, foreach=False),
    "sgd_weight_decay": lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01, foreach=False),
    "sgd_momentum_weight_decay": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8, weight_decay=0.05, foreach=False),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01, foreach=False),
    "adam_amsgrad": lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True, foreach=False),
    "adam_weight_decay": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01, foreach=False),
    "adam_betas": lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, foreach=False),
    # 1 - beta1 >= 0.5: ATen's lerp takes its other branch, end - (end - self) * (1 - weight).
    "adam_low_beta1": lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.3, 0.9), foreach=False),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, foreach=False),
    "adamw_amsgrad": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, amsgrad=True, foreach=False),
}

ACTIVATIONS = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu, "identity": lambda z: z}


def build(arch, seed):
    """The layers, seeded, and a batch of inputs and targets."""
    torch.manual_seed(seed)
    widths = arch["widths"]
    layers = [torch.nn.Linear(i, o, dtype=dtype) for i, o in zip(widths, widths[1:])]
    x = torch.randn(arch["batch"], widths[0], dtype=dtype)
    if arch["loss"] == "mse":
        target = torch.rand(arch["batch"], widths[-1], dtype=dtype)
    else:
        target = torch.randint(0, widths[-1], (arch["batch"],))
    return layers, x, target


def loss_of(arch, layers, x, target):
    a = x
    for layer, activation in zip(layers, arch["activations"]):
        a = ACTIVATIONS[activation](layer(a))
    if arch["loss"] == "mse":
        return F.mse_loss(a, target)
    return F.cross_entropy(a, target)


def parameters(layers):
    out = {}
    for k, layer in enumerate(layers, start=1):
        out[f"fc{k}.weight"] = layer.weight.detach().tolist()
        out[f"fc{k}.bias"] = layer.bias.detach().tolist()
    return out


def main():
    cases = []
    for index, (arch_name, arch) in enumerate(ARCHITECTURES.items()):
        for opt_name, make in OPTIMIZERS.items():
            layers, x, target = build(arch, index)
            params = [p for layer in layers for p in (layer.weight, layer.bias)]
            optimizer = make(params)
            case = {
                "name": f"{arch_name}_{opt_name}",
                "architecture": arch_name,
                "optimizer": opt_name,
                "input": x.tolist(),
                "target": target.tolist(),
                "initial": parameters(layers),
                "after": [],
            }
            for _ in range(3):
                optimizer.zero_grad()
                loss_of(arch, layers, x, target).backward()
                optimizer.step()
                case["after"].append(parameters(layers))
            cases.append(case)

    path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "optim.json"
    path.write_text(json.dumps({"torch_version": torch.__version__, "generator": "scripts/gen_optim_fixtures.py", "cases": cases}) + "\n")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
