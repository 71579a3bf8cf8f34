"""The controller of examples/embedded.rs, trained in PyTorch: 3 => tanh 16 => tanh 8 => 1 imitating
a saturated PD law u = tanh(2·(target − angle) − 0.5·velocity) on random states. Writes
examples/models/controller.safetensors with python/export.py. Run: python3 scripts/make_embedded_model.py"""
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from export import export  # noqa: E402

torch.manual_seed(7)
model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(3000):
    x = torch.rand(256, 3) * 4 - 2  # angle, velocity, target
    u = torch.tanh(2 * (x[:, 2] - x[:, 0]) - 0.5 * x[:, 1]).unsqueeze(1)
    loss = nn.functional.mse_loss(model(x), u)
    opt.zero_grad()
    loss.backward()
    opt.step()
print("final mse", float(loss))
path = os.path.join(HERE, "..", "examples", "models", "controller.safetensors")
print(export(model, path, name="Controller", weights_path="examples/models/controller.safetensors"))
