"""PyTorch reference for the trainer's golden loss trajectory (src/trainer/golden-trajectory.json).

Usage: /usr/bin/python3 golden_trajectory.py INPUT_DIR
INPUT_DIR holds manifest.json and weights.bin as src/trainer/golden-fixture.ts writes them (run
through bench/reference/golden-trajectory.ts, which also writes the JSON). Prints one JSON object:
{"runs": {"full": {"float64": [...], "float32": [...]}, "lora": {...}}}: the per-step training
losses of each run, computed in float64 (the golden values) and in float32 (to show how far plain
float32 rounding alone moves them).

The model is written out from the math, not from the trainer's graph: RMSNorm, RoPE on adjacent
pairs (ggml mode 0), causal grouped-query attention (query head h reads KV head h // (H / Hkv)),
SwiGLU, untied head; the loss is the mean cross-entropy over every counted target of the step;
gradients are clipped to a global L2 norm of maxGradNorm (scaled by max / (norm + 1e-6) when over
it, as the trainer does); torch.optim.AdamW with decay on matrices only; the learning rate is
warm-up then cosine/linear/constant as the trainer's settings say.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from llama_ops import rope

torch.set_num_threads(1)
src = sys.argv[1]
with open(os.path.join(src, "manifest.json")) as f:
    manifest = json.load(f)
flat = np.fromfile(os.path.join(src, "weights.bin"), dtype="<f4")
cfg = manifest["config"]
D, H, KV, L = cfg["embeddingLength"], cfg["headCount"], cfg["headCountKv"], cfg["blockCount"]
HD = D // H
EPS, BASE = cfg["rmsNormEps"], cfg["ropeFreqBase"]


def tensor(entry, dtype):
    """ggml shape [ne0, ne1] is ne1 rows of ne0 values: a torch (ne1, ne0) matrix."""
    n = int(np.prod(entry["shape"]))
    a = flat[entry["offset"]:entry["offset"] + n].astype(np.float64)
    return torch.tensor(a.reshape(list(reversed(entry["shape"]))), dtype=dtype)


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def run(spec, dtype):
    settings = spec["settings"]
    W = {e["name"]: tensor(e, dtype) for e in manifest["tensors"]}
    lora = settings["lora"]
    adapters = {e["name"]: tensor(e, dtype) for e in spec["loraInit"]}
    if lora:
        params = {n: t.requires_grad_() for n, t in adapters.items()}
    else:
        params = {n: t.requires_grad_() for n, t in W.items()}
    scale = lora["alpha"] / lora["rank"] if lora else 0.0

    def linear(x, name):
        y = x @ W[name].t()
        a = adapters.get(name + ".lora_a")
        if a is not None:
            y = y + ((x @ a.t()) * scale) @ adapters[name + ".lora_b"].t()
        return y

    def forward(tokens):
        T = len(tokens)
        x = W["token_embd.weight"][tokens]
        positions = torch.arange(T)
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        for l in range(L):
            p = "blk.%d." % l
            h = rms_norm(x, W[p + "attn_norm.weight"])
            q = rope(linear(h, p + "attn_q.weight").view(T, H, HD).transpose(0, 1), positions, BASE)
            k = rope(linear(h, p + "attn_k.weight").view(T, KV, HD).transpose(0, 1), positions, BASE)
            v = linear(h, p + "attn_v.weight").view(T, KV, HD).transpose(0, 1)
            k = k.repeat_interleave(H // KV, dim=0)
            v = v.repeat_interleave(H // KV, dim=0)
            att = ((q @ k.transpose(-1, -2)) / math.sqrt(HD)).masked_fill(causal, float("-inf")).softmax(-1)
            x = x + linear((att @ v).transpose(0, 1).reshape(T, D), p + "attn_output.weight")
            h = rms_norm(x, W[p + "ffn_norm.weight"])
            x = x + linear(F.silu(linear(h, p + "ffn_gate.weight")) * linear(h, p + "ffn_up.weight"), p + "ffn_down.weight")
        return linear(rms_norm(x, W["output_norm.weight"]), "output.weight")

    decay = [t for t in params.values() if t.dim() >= 2]
    no_decay = [t for t in params.values() if t.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings["learningRate"],
        betas=(settings["adamBeta1"], settings["adamBeta2"]),
        eps=settings["adamEps"],
    )
    seqs = []
    for s in manifest["sequences"]:
        tokens = torch.tensor(s["tokens"], dtype=torch.long)
        mask = torch.tensor(s["lossMask"][1:], dtype=torch.bool)
        seqs.append((tokens[:-1], tokens[1:][mask], mask))
    counted = sum(int(m.sum()) for _, _, m in seqs)
    losses = []
    for step in range(settings["totalSteps"]):
        for group in opt.param_groups:
            group["lr"] = learning_rate(settings, step)
        opt.zero_grad()
        # Sum of -log p(target) over every counted target of the step, divided by their count.
        total = sum(F.cross_entropy(forward(inp)[mask], tgt, reduction="sum") for inp, tgt, mask in seqs) / counted
        total.backward()
        norm = math.sqrt(sum(float((t.grad.double() ** 2).sum()) for t in params.values()))
        if settings["maxGradNorm"] > 0 and norm > settings["maxGradNorm"]:
            for t in params.values():
                t.grad.mul_(settings["maxGradNorm"] / (norm + 1e-6))
        opt.step()
        losses.append(float(total))
    return losses


def learning_rate(s, step):
    peak, warm, total = s["learningRate"], s["warmupSteps"], s["totalSteps"]
    if step < warm:
        return peak * (step + 1) / warm
    if s["schedule"] == "constant":
        return peak
    p = (step - warm) / max(1, total - warm)
    return peak * (1 - p) if s["schedule"] == "linear" else peak * 0.5 * (1 + math.cos(math.pi * p))


print(json.dumps({"runs": {spec["name"]: {"float64": run(spec, torch.float64), "float32": run(spec, torch.float32)} for spec in manifest["runs"]}}))
