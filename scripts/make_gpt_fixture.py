#!/usr/bin/env python3
"""Write the PyTorch parity fixture for goreweight/gpt.

Builds the tiny GPT of goreweight/trainer/gpt (same architecture, same parameter names
and layouts: pre-LayerNorm blocks, causal multi-head attention, 4x GELU-tanh
MLP, final LayerNorm, LM head tied to wte) directly from tensors in PyTorch,
with deterministic pseudo-random float32 parameters. It runs two batches in
float64 (the float32 parameters are cast up, so the reference is exact to
float64 rounding) and records per-sequence losses and parameter gradients:

* "weighted": B=4, T=70 (several of the Go code's 32-row attention blocks
  plus a partial one; shorter than Seq), non-uniform weights, one sequence whose targets are
  all ignored (loss NaN, stored as null, weight 0) and one valid sequence with
  weight 0. Gradient of sum_b w_b * loss_b over the nonzero weights.
* "mean": B=3, T=33, a few ignored targets; gradient of losses.mean(), which
  Go must reproduce with weights all 1/B.

Output: goreweight/trainer/gpt/testdata/gpt_fixture.json (well under 1 MB). Run from
the repository root: python3 scripts/make_gpt_fixture.py. Needs torch only
here; the Go test reads the JSON.
"""

from __future__ import annotations

import json
import math
import pathlib

import torch
import torch.nn.functional as F

CONFIG = {"Vocab": 19, "Seq": 72, "Layers": 2, "Heads": 2, "Width": 16}
OUT = pathlib.Path(__file__).resolve().parent.parent / "goreweight" / "gpt" / "testdata" / "gpt_fixture.json"


def param_specs(cfg: dict) -> list[tuple[str, list[int], str]]:
    """Names, shapes and kinds in goreweight/gpt's Params order."""
    V, S, C = cfg["Vocab"], cfg["Seq"], cfg["Width"]
    specs = [("wte", [V, C], "emb"), ("wpe", [S, C], "emb")]
    for layer in range(cfg["Layers"]):
        p = f"h.{layer}."
        specs += [
            (p + "ln_1.weight", [C], "lnw"), (p + "ln_1.bias", [C], "bias"),
            (p + "attn.c_attn.weight", [3 * C, C], "mat"), (p + "attn.c_attn.bias", [3 * C], "bias"),
            (p + "attn.c_proj.weight", [C, C], "mat"), (p + "attn.c_proj.bias", [C], "bias"),
            (p + "ln_2.weight", [C], "lnw"), (p + "ln_2.bias", [C], "bias"),
            (p + "mlp.c_fc.weight", [4 * C, C], "mat"), (p + "mlp.c_fc.bias", [4 * C], "bias"),
            (p + "mlp.c_proj.weight", [C, 4 * C], "mat"), (p + "mlp.c_proj.bias", [C], "bias"),
        ]
    specs += [("ln_f.weight", [C], "lnw"), ("ln_f.bias", [C], "bias")]
    return specs


def make_params(cfg: dict, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Float32 values large enough that every path carries signal."""
    std = {"emb": 0.5, "mat": 0.25, "bias": 0.1, "lnw": 0.1}
    params = {}
    for name, shape, kind in param_specs(cfg):
        t = torch.randn(shape, generator=gen, dtype=torch.float32) * std[kind]
        if kind == "lnw":
            t = t + 1.0
        params[name] = t
    return params


def forward(p: dict[str, torch.Tensor], cfg: dict, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean cross-entropy over non-ignored targets (NaN if none)."""
    B, T = tokens.shape
    C, H = cfg["Width"], cfg["Heads"]
    hs = C // H
    x = p["wte"][tokens] + p["wpe"][:T]
    for layer in range(cfg["Layers"]):
        q = f"h.{layer}."
        h = F.layer_norm(x, (C,), p[q + "ln_1.weight"], p[q + "ln_1.bias"], eps=1e-5)
        qkv = F.linear(h, p[q + "attn.c_attn.weight"], p[q + "attn.c_attn.bias"])
        qq, kk, vv = qkv.split(C, dim=2)
        qq, kk, vv = (z.view(B, T, H, hs).transpose(1, 2) for z in (qq, kk, vv))
        y = F.scaled_dot_product_attention(qq, kk, vv, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(y, p[q + "attn.c_proj.weight"], p[q + "attn.c_proj.bias"])
        h = F.layer_norm(x, (C,), p[q + "ln_2.weight"], p[q + "ln_2.bias"], eps=1e-5)
        h = F.gelu(F.linear(h, p[q + "mlp.c_fc.weight"], p[q + "mlp.c_fc.bias"]), approximate="tanh")
        x = x + F.linear(h, p[q + "mlp.c_proj.weight"], p[q + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], eps=1e-5)
    logits = F.linear(x, p["wte"])
    tok = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1), ignore_index=-1, reduction="none").view(B, T)
    mask = (targets >= 0).to(tok.dtype)
    return (tok * mask).sum(1) / mask.sum(1)  # 0/0 = NaN for an all-ignored row


def fmt(values, digits: int) -> str:
    return "[" + ",".join("null" if math.isnan(v) else format(v, f".{digits}g") for v in values) + "]"


def run_case(name, params32, cfg, tokens, targets, weights, mean):
    p = {k: v.double().requires_grad_(True) for k, v in params32.items()}
    losses = forward(p, cfg, tokens, targets)
    if mean:
        objective = losses.mean()
    else:
        w = torch.tensor(weights, dtype=torch.float64)
        keep = w != 0  # NaN losses carry weight 0 and must not reach the sum
        objective = (w[keep] * losses[keep]).sum()
    objective.backward()
    grads = "{" + ",".join(f'"{k}":{fmt(v.grad.flatten().tolist(), 10)}' for k, v in p.items()) + "}"
    B, T = tokens.shape
    return (
        "{"
        f'"name":"{name}","B":{B},"T":{T},"mean":{json.dumps(mean)},'
        f'"tokens":{json.dumps(tokens.flatten().tolist())},'
        f'"targets":{json.dumps(targets.flatten().tolist())},'
        f'"weights":{fmt(weights, 9)},'
        f'"losses":{fmt(losses.detach().tolist(), 12)},'
        f'"grads":{grads}'
        "}"
    )


def main() -> None:
    gen = torch.Generator().manual_seed(20250211)
    cfg = CONFIG
    V = cfg["Vocab"]
    params = make_params(cfg, gen)

    # Case 1: weighted, with an all-ignored sequence and a zero-weight one.
    B, T = 4, 70
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    targets[0, torch.randperm(T, generator=gen)[:9]] = -1
    targets[2, :] = -1
    weighted = run_case("weighted", params, cfg, tokens, targets, [0.7, 1.9, 0.0, 0.0], mean=False)

    # Case 2: plain mean (Go: weights 1/B).
    B, T = 3, 33
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    targets[1, [0, 5, 32]] = -1
    mean = run_case("mean", params, cfg, tokens, targets, [1.0 / B] * B, mean=True)

    plist = ",".join(
        f'{{"name":"{name}","shape":{json.dumps(list(t.shape))},"data":{fmt(t.flatten().tolist(), 9)}}}'
        for name, t in params.items()
    )
    text = (
        "{"
        f'"generator":"scripts/make_gpt_fixture.py","torch":"{torch.__version__}",'
        f'"config":{json.dumps(cfg)},"params":[{plist}],"cases":[{weighted},{mean}]'
        "}\n"
    )
    json.loads(text)  # well-formed
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(OUT)
    print(f"wrote {OUT} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
