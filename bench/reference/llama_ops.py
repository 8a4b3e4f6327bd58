"""Functions both PyTorch references (llama_train.py, golden_trajectory.py) compute alike."""
import torch


def rope(x, pos, base=10000.0, factors=None):
    """Rotates the adjacent pairs (2i, 2i+1) of x's last dimension by pos * base^(-2i/d), as
    ggml_rope mode 0 does; pos holds one position per row of the second-to-last dimension.
    factors (Llama 3's rope_freqs) divide the frequencies pair by pair."""
    d = x.shape[-1]
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    if factors is not None:
        inv = inv / torch.tensor(factors, dtype=torch.float64)
    ang = (pos.double()[:, None] * inv[None, :]).to(x.dtype)
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out
