#!/usr/bin/env python3
"""Export a PyTorch model to backprop: print the matching `network!` declaration and write the
weights as safetensors, for `#[weights("...")]` (compile time) or `io::load` (run time).

    python3 python/export.py my_module:make_model --name Policy --out models/policy.safetensors

or from Python:

    from export import export
    print(export(model, "models/policy.safetensors", name="Policy"))

The model must be an `nn.Sequential` (or a module whose direct children, in registration order,
form one) of `nn.Linear` layers, each optionally followed by one supported activation. Anything
else (convolutions, dropout, normalisation, a Linear without bias, an activation with settings
backprop does not have) is refused with a message naming the module. Needs only torch and
safetensors.
"""
import argparse
import importlib
import sys

import torch
from torch import nn
from safetensors.torch import save_file


class Unsupported(ValueError):
    """A module backprop cannot express, named with its path in the model."""


def _activation(name, module):
    """The `network!` spelling of an activation module, or raise Unsupported."""
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.LeakyReLU):
        slope = float(module.negative_slope)
        return "leaky_relu" if slope == 0.01 else f"leaky_relu({slope!r})"
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, nn.Tanh):
        return "tanh"
    if isinstance(module, nn.Identity):
        return "identity"
    if isinstance(module, nn.Softplus):
        if module.beta != 1 or module.threshold != 20:
            raise Unsupported(
                f"module `{name}` is Softplus(beta={module.beta}, threshold={module.threshold}): "
                "backprop's softplus is torch's default (beta 1, threshold 20)"
            )
        return "softplus"
    if isinstance(module, nn.ELU):
        alpha = float(module.alpha)
        return "elu" if alpha == 1.0 else f"elu({alpha!r})"
    if isinstance(module, nn.GELU):
        if module.approximate != "none":
            raise Unsupported(
                f"module `{name}` is GELU(approximate='{module.approximate}'): backprop's gelu is "
                "the exact erf form (approximate='none')"
            )
        return "gelu"
    if isinstance(module, nn.SiLU):
        return "silu"
    if isinstance(module, nn.Softmax):
        if module.dim not in (-1, 1, None):
            raise Unsupported(f"module `{name}` is Softmax(dim={module.dim}): backprop's softmax is over the features (dim=-1)")
        return "softmax"
    return None


def _modules(model):
    """The (name, module) sequence: the children of an nn.Sequential or of a plain module."""
    children = list(model.named_children())
    if not children:
        raise Unsupported(f"the model `{type(model).__name__}` has no layers")
    flat = []
    for name, child in children:
        if isinstance(child, nn.Sequential):
            flat.extend((f"{name}.{inner}", module) for inner, module in child.named_children())
        else:
            flat.append((name, child))
    return flat


def declaration(model, name="Net", weights=None, scalar_comment=True):
    """The `network!` declaration for `model` and the state-dict names its file will use.

    Returns (text, layers) where layers is a list of (prefix, linear) in order."""
    layers, widths, activations = [], [], []
    for path, module in _modules(model):
        if isinstance(module, nn.Linear):
            if module.bias is None:
                raise Unsupported(f"module `{path}` is Linear(bias=False): every backprop layer has a bias")
            if widths and widths[-1] != module.in_features:
                raise Unsupported(
                    f"module `{path}` takes {module.in_features} inputs, but the layer before it outputs {widths[-1]}"
                )
            if not widths:
                widths.append(module.in_features)
            widths.append(module.out_features)
            layers.append((path, module))
            activations.append("identity")
            continue
        spelled = _activation(path, module)
        if spelled is None:
            raise Unsupported(
                f"module `{path}` is {type(module).__name__}, which backprop does not support; "
                "supported: Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Identity, Softplus, ELU, GELU, SiLU, Softmax"
            )
        if not layers:
            raise Unsupported(f"module `{path}` ({type(module).__name__}) comes before the first Linear")
        if activations[-1] != "identity":
            raise Unsupported(f"module `{path}` is a second activation after one Linear: backprop has one per layer")
        activations[-1] = spelled
    if not layers:
        raise Unsupported("the model has no nn.Linear layer")
    parts = [str(widths[0])]
    for width, activation in zip(widths[1:], activations):
        parts.append(f"{width}" if activation == "identity" else f"{activation} {width}")
    body = " => ".join(parts)
    attrs = ""
    if weights is not None:
        attrs = f'    #[weights("{weights}")]\n'
    text = f"network! {{\n{attrs}    pub struct {name} < {body} >\n}}"
    return text, layers


def export(model, path, name="Net", dtype=torch.float32, weights_path=None):
    """Writes `model`'s weights to `path` (tensors `fc1.weight`, `fc1.bias`, ... in `dtype`) and
    returns the matching `network!` declaration, with `#[weights(weights_path or path)]`."""
    text, layers = declaration(model, name, weights_path or path)
    state = {}
    for k, (_, linear) in enumerate(layers, start=1):
        state[f"fc{k}.weight"] = linear.weight.detach().to(dtype).contiguous().cpu()
        state[f"fc{k}.bias"] = linear.bias.detach().to(dtype).contiguous().cpu()
    save_file(state, path, metadata={"format": "pt"})
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="module:callable returning the model, or a file saved with torch.save(model)")
    parser.add_argument("--name", default="Net", help="the network's struct name")
    parser.add_argument("--out", required=True, help="the safetensors file to write")
    parser.add_argument("--weights-path", help="the path to put in #[weights(...)] (default: --out)")
    parser.add_argument("--dtype", choices=["f32", "f64", "f16", "bf16"], default="f32")
    args = parser.parse_args(argv)
    if ":" in args.model:
        module, attr = args.model.split(":", 1)
        sys.path.insert(0, ".")
        model = getattr(importlib.import_module(module), attr)()
    else:
        model = torch.load(args.model, weights_only=False)
    dtype = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    try:
        print(export(model, args.out, args.name, dtype, args.weights_path))
    except Unsupported as error:
        print(f"export.py: cannot export: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
