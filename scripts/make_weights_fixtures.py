"""Fixtures for compile-time weights (tests/suite/weights.rs, tests/ui/weights_*.rs): torch-written
safetensors files and torch's outputs on fixed inputs. Run: python3 scripts/make_weights_fixtures.py
(torch and safetensors needed; CI reads only the committed outputs)."""
import copy
import json
import os

import torch
from safetensors.torch import save_file
from torch import nn

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "weights")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(14)


class Seed(nn.Module):
    """4 => relu 5 => relu 2 => sigmoid 1, attributes named like the network's fields."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 5), nn.Linear(5, 2), nn.Linear(2, 1)

    def forward(self, x):
        return torch.sigmoid(self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x))))))


def inputs(n, width, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, width, generator=g, dtype=torch.float64) * 1.5


expected = {}


def record(key, model, x):
    """Outputs in f32 and f64 of `model` (whose weights are what the file holds, up-converted)."""
    expected[key] = {
        "inputs": x.tolist(),
        "f32": copy.deepcopy(model).float()(x.float()).double().tolist(),
        "f64": copy.deepcopy(model).double()(x.double()).tolist(),
    }


def save(model, name, dtype):
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(OUT, name))
    return state


seed = Seed()
x4 = inputs(6, 4, 1)
with torch.no_grad():
    # f32 named.
    save(seed, "seed_f32.safetensors", torch.float32)
    record("seed_f32", seed, x4)
    # f64 named: weights of their own, in double.
    seed64 = Seed().double()
    save(seed64, "seed_f64.safetensors", torch.float64)
    # The f32 network gets the f64 values rounded to nearest (`.float()`), as record does.
    record("seed_f64", seed64, x4)
    # f16 and bf16: torch's outputs for the up-converted weights.
    for dtype, name in [(torch.float16, "f16"), (torch.bfloat16, "bf16")]:
        state = save(seed, f"seed_{name}.safetensors", dtype)
        m = Seed()
        m.load_state_dict({k: v.to(torch.float64) for k, v in state.items()})
        record(f"seed_{name}", m, x4)
    # nn.Sequential: 3 => tanh 8 => relu 4 => 2 (identity last: no module after it).
    seq = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    save(seq, "sequential.safetensors", torch.float32)
    record("sequential", seq, inputs(5, 3, 2))
    # A layer above 16 384 weights: 200 => relu 100 => 3 (20 000 weights in fc1).
    large = nn.Sequential(nn.Linear(200, 100), nn.ReLU(), nn.Linear(100, 3))
    save(large, "large.safetensors", torch.float32)
    record("large", large, inputs(3, 200, 3))

    # A chain: encoder (6 => relu 4 => 2) and decoder (2 => tanh 4 => 6), as submodules with
    # attributes fc1, fc2: tensors `encoder.fc1.weight`, ...
    class Part(nn.Module):
        def __init__(self, a, b, c, act):
            super().__init__()
            self.fc1, self.fc2, self.act = nn.Linear(a, b), nn.Linear(b, c), act

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = Part(6, 4, 2, nn.ReLU()), Part(2, 4, 6, nn.Tanh())

        def forward(self, x):
            return self.decoder(self.encoder(x))

    chain = Chain()
    save(chain, "chain.safetensors", torch.float32)
    record("chain", chain, inputs(4, 6, 4))

    # Broken files for the trybuild cases (declared as the seed network).
    good = {k: v.float().contiguous() for k, v in seed.state_dict().items()}
    missing = dict(good); del missing["fc2.bias"]
    save_file(missing, os.path.join(OUT, "missing_tensor.safetensors"))
    extra = dict(good); extra["fc4.weight"] = torch.zeros(3, 3)
    save_file(extra, os.path.join(OUT, "extra_tensor.safetensors"))
    shape = dict(good); shape["fc1.weight"] = good["fc1.weight"].t().contiguous()
    save_file(shape, os.path.join(OUT, "wrong_shape.safetensors"))
    ints = dict(good); ints["fc3.bias"] = torch.zeros(1, dtype=torch.int64)
    save_file(ints, os.path.join(OUT, "int_dtype.safetensors"))
    raw = open(os.path.join(OUT, "seed_f32.safetensors"), "rb").read()
    open(os.path.join(OUT, "truncated.safetensors"), "wb").write(raw[:-3])
    open(os.path.join(OUT, "not_safetensors.safetensors"), "wb").write(b"PK\x03\x04 this is a zip, not a safetensors file")

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print("wrote", sorted(os.listdir(OUT)))
