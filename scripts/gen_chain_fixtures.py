"""PyTorch fixtures for a chained network: an encoder and a decoder trained together.

Writes tests/fixtures/chain.json: an autoencoder made of two nn.Sequential parts,
encoder = Linear(6, 4), Tanh, Linear(4, 2), ReLU and decoder = Linear(2, 4), ReLU, Linear(4, 6),
Sigmoid, in float64 with PyTorch's default initialisation (torch.manual_seed(7)); a batch of 5
inputs (randn) and targets (rand); MSE loss; three steps of SGD with lr 0.1. For every step it
records the loss, every gradient and the parameters after the step, under the names the Rust
chain uses (`encoder.fc1.weight` for encoder[0].weight, ...).

Run by hand (CI never does): pip install torch numpy; python3 scripts/gen_chain_fixtures.py
"""

import json
import pathlib

import torch

torch.manual_seed(7)
torch.set_num_threads(1)
dtype = torch.float64

encoder = torch.nn.Sequential(
    torch.nn.Linear(6, 4, dtype=dtype), torch.nn.Tanh(), torch.nn.Linear(4, 2, dtype=dtype), torch.nn.ReLU()
)
decoder = torch.nn.Sequential(
    torch.nn.Linear(2, 4, dtype=dtype), torch.nn.ReLU(), torch.nn.Linear(4, 6, dtype=dtype), torch.nn.Sigmoid()
)
x = torch.randn(5, 6, dtype=dtype)
target = torch.rand(5, 6, dtype=dtype)

# Rust name -> torch module, in the order the Rust network lists its parameters.
layers = {
    "encoder.fc1": encoder[0],
    "encoder.fc2": encoder[2],
    "decoder.fc1": decoder[0],
    "decoder.fc2": decoder[2],
}


def parameters():
    """Every parameter under its Rust name, as nested lists ([out][in] for weights)."""
    out = {}
    for name, module in layers.items():
        out[f"{name}.weight"] = module.weight.detach().tolist()
        out[f"{name}.bias"] = module.bias.detach().tolist()
    return out


def gradients():
    """Every gradient under its Rust name."""
    out = {}
    for name, module in layers.items():
        out[f"{name}.weight"] = module.weight.grad.tolist()
        out[f"{name}.bias"] = module.bias.grad.tolist()
    return out


optimizer = torch.optim.SGD(list(encoder.parameters()) + list(decoder.parameters()), lr=0.1)
fixture = {
    "description": __doc__.strip().splitlines()[0],
    "torch_version": torch.__version__,
    "generator": "scripts/gen_chain_fixtures.py",
    "lr": 0.1,
    "input": x.tolist(),
    "target": target.tolist(),
    "initial_params": parameters(),
    "steps": [],
}
for _ in range(3):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(decoder(encoder(x)), target)
    loss.backward()
    step = {"loss": loss.item(), "grads": gradients()}
    optimizer.step()
    step["params_after"] = parameters()
    fixture["steps"].append(step)

path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "chain.json"
path.write_text(json.dumps(fixture, indent=1) + "\n")
print(f"wrote {path}")
