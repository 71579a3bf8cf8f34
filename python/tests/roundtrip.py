"""The export round trip (run by tests/suite/export_roundtrip.rs when torch is installed): exports three
torch models with python/export.py into DIR, and writes DIR/src/main.rs declaring them with the
printed declarations and checking their outputs against torch's on fixed inputs (1e-6 relative
in f32, on the batch's scale). Usage: python3 python/tests/roundtrip.py DIR"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from export import export  # noqa: E402


class Custom(nn.Module):
    """A module of Linears and activations as attributes (registration order is layer order)."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, 6)
        self.act = nn.Tanh()
        self.hidden = nn.Linear(6, 4)
        self.act2 = nn.LeakyReLU(0.2)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.act2(self.hidden(self.act(self.inp(x)))))


def main(out):
    torch.manual_seed(5)
    os.makedirs(os.path.join(out, "src"), exist_ok=True)
    models = {
        "Seed": (nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2), nn.ReLU(), nn.Linear(2, 1), nn.Sigmoid()), 4),
        "Custom": (Custom(), 3),
        "Classifier": (nn.Sequential(nn.Linear(5, 8), nn.GELU(), nn.Linear(8, 6), nn.SiLU(), nn.Linear(6, 3), nn.Softmax(dim=-1)), 5),
    }
    rust = ["use backprop::prelude::*;", ""]
    checks = []
    for name, (model, inputs) in models.items():
        path = os.path.abspath(os.path.join(out, f"{name.lower()}.safetensors"))
        rust.append(export(model, path, name=name))
        x = torch.randn(4, inputs, generator=torch.Generator().manual_seed(len(name)))
        with torch.no_grad():
            y = model(x)
        scale = float(y.abs().max())
        for row, target in zip(x.tolist(), y.tolist()):
            xs = ", ".join(f"{v!r}f32" for v in row)
            ts = ", ".join(f"{v!r}" for v in target)
            checks.append(
                f"    check(\"{name}\", {name}::WEIGHTS.forward(&[{xs}]).as_slice(), &[{ts}], {scale!r});"
            )
    rust += [
        "",
        "fn check(name: &str, ours: &[f32], torch: &[f64], scale: f64) {",
        "    for (o, t) in ours.iter().zip(torch) {",
        "        let error = (f64::from(*o) - t).abs() / t.abs().max(scale);",
        "        assert!(error <= 1e-6, \"{name}: ours {o}, torch {t}, relative {error:e}\");",
        "    }",
        "}",
        "",
        "fn main() {",
        *checks,
        "    println!(\"round trip: 3 models equal torch\");",
        "}",
    ]
    with open(os.path.join(out, "src", "main.rs"), "w") as f:
        f.write("\n".join(rust) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
