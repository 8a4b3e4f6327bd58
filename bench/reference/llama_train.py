"""PyTorch reference for `npm run bench:trainer`: the same Llama-family shapes the NodeAI trainer
builds (RMSNorm, RoPE, grouped-query attention, SwiGLU; Qwen2's QKV bias; Llama 3's rope_freqs),
trained with AdamW on random tokens.

Usage: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 llama_train.py CONFIG_JSON
CONFIG_JSON: {"vocab","d","layers","heads","kv_heads","ffn","ctx","batch","tied","lora_rank","lora_alpha","steps","warmup","threads",
              "qkv_bias","rope_base","rms_eps","rope_factors","frozen_dtype"}
  rope_factors: null or one divisor per rotated pair (GGUF rope_freqs); frozen_dtype: null (F32) or "bfloat16"/"float16",
  the dtype the frozen base weights are held and multiplied in when lora_rank > 0 (PyTorch has no Q8_0/Q4_K kernels).
Prints one JSON line: {"tok_s", "step_ms", "loss_first", "loss_last", "max_rss_mb"}.
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from llama_ops import rope

cfg = json.loads(sys.argv[1])
torch.manual_seed(0)
torch.set_num_threads(cfg.get("threads", 2))

V, D, L, H, KV, FF, T, B = (cfg[k] for k in ("vocab", "d", "layers", "heads", "kv_heads", "ffn", "ctx", "batch"))
HD = D // H
R = cfg.get("lora_rank", 0)
QKV_BIAS = cfg.get("qkv_bias", False)
ROPE_BASE = cfg.get("rope_base", 10000.0)
RMS_EPS = cfg.get("rms_eps", 1e-5)
ROPE_FACTORS = cfg.get("rope_factors")
# Frozen weights in half precision only under LoRA: full fine-tuning trains F32 weights.
FROZEN_DTYPE = getattr(torch, cfg["frozen_dtype"]) if R and cfg.get("frozen_dtype") else torch.float32


class RMSNorm(nn.Module):
    def __init__(self, d, eps=RMS_EPS):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w


def frozen_matmul(x, w):
    """x @ w.t() with w in its own dtype; a half-precision frozen w multiplies x rounded to that dtype
    (as PEFT LoRA on a BF16 base does), and the result and dx come back in F32."""
    if w.dtype == torch.float32:
        return x @ w.t()
    return (x.to(w.dtype) @ w.t()).float()


class Linear(nn.Module):
    """A projection (bias optional) with an optional LoRA branch (base frozen when rank > 0)."""

    def __init__(self, i, o, bias=False):
        super().__init__()
        self.w = nn.Parameter(torch.randn(o, i) * 0.02)
        self.bias = nn.Parameter(torch.randn(o) * 0.02) if bias else None
        if R:
            self.w = nn.Parameter(self.w.detach().to(FROZEN_DTYPE), requires_grad=False)
            if self.bias is not None:
                self.bias.requires_grad_(False)
            self.a = nn.Parameter(torch.randn(R, i) * 0.02)
            self.b = nn.Parameter(torch.zeros(o, R))
            self.scale = cfg.get("lora_alpha", 2 * R) / R

    def forward(self, x):
        y = frozen_matmul(x, self.w)
        if self.bias is not None:
            y = y + self.bias
        if R:
            y = y + (x @ self.a.t()) @ self.b.t() * self.scale
        return y


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = RMSNorm(D), RMSNorm(D)
        self.q, self.k, self.v, self.o = Linear(D, D, QKV_BIAS), Linear(D, KV * HD, QKV_BIAS), Linear(D, KV * HD, QKV_BIAS), Linear(D, D)
        self.gate, self.up, self.down = Linear(D, FF), Linear(D, FF), Linear(FF, D)
        if R:
            for n in (self.n1, self.n2):
                n.w.requires_grad_(False)

    def forward(self, x, pos):
        h = self.n1(x)
        q = self.q(h).view(B, T, H, HD).transpose(1, 2)
        k = self.k(h).view(B, T, KV, HD).transpose(1, 2)
        v = self.v(h).view(B, T, KV, HD).transpose(1, 2)
        q, k = rope(q, pos, ROPE_BASE, ROPE_FACTORS), rope(k, pos, ROPE_BASE, ROPE_FACTORS)
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HD)
        att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf")).softmax(-1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(B, T, D))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Parameter(torch.randn(V, D) * 0.02)
        self.blocks = nn.ModuleList([Block() for _ in range(L)])
        self.norm = RMSNorm(D)
        self.head = None if cfg.get("tied") else nn.Parameter(torch.randn(V, D) * 0.02)
        if R:
            self.emb = nn.Parameter(self.emb.detach().to(FROZEN_DTYPE), requires_grad=False)
            self.norm.w.requires_grad_(False)
            if self.head is not None:
                self.head = nn.Parameter(self.head.detach().to(FROZEN_DTYPE), requires_grad=False)

    def forward(self, idx):
        pos = torch.arange(T, dtype=torch.float32)
        x = self.emb[idx].float()
        for b in self.blocks:
            x = b(x, pos)
        return frozen_matmul(self.norm(x), self.emb if self.head is None else self.head)


model = Model()
trainable = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(trainable, lr=1e-3)
data = torch.randint(0, V, (4096 * 64,))
steps, warmup = cfg.get("steps", 10), cfg.get("warmup", 3)
losses = []
for s in range(warmup + steps):
    if s == warmup:
        t0 = time.perf_counter()
    starts = torch.randint(0, data.numel() - T - 1, (B,))
    x = torch.stack([data[i:i + T] for i in starts])
    y = torch.stack([data[i + 1:i + T + 1] for i in starts])
    loss = F.cross_entropy(model(x).view(-1, V), y.view(-1))
    opt.zero_grad()
    loss.backward()
    # As NodeAI's trainer does by default (max norm 1), so both pay for the same work.
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    opt.step()
    losses.append(loss.item())
dt = time.perf_counter() - t0
print(json.dumps({
    "tok_s": steps * B * T / dt,
    "step_ms": dt / steps * 1000,
    "loss_first": losses[0],
    "loss_last": losses[-1],
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
