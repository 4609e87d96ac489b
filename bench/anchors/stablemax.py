"""Anchors for the stablemax group: the official StableMax cross-entropy formulation (Prieto et
al., utils.py: float64 cast, torch.where, gather) forward+backward through autograd, and the
official StableMax itself, float32 logits, one thread. Shapes are (batch, classes)."""
import torch

from _common import emit, seconds_per_call


def s(x):
    return torch.where(x < 0, 1 / (1 - x + 1e-30), x + 1)


def log_stablemax(x):
    sx = s(x)
    return torch.log(sx / torch.sum(sx, dim=-1, keepdim=True))


def stablemax_cross_entropy(logits, labels):
    logprobs = log_stablemax(logits.to(torch.float64))
    prediction_logprobs = torch.gather(logprobs, index=labels[:, None], dim=-1).to(torch.float64)
    return -torch.mean(prediction_logprobs)


for b, c in ((512, 10), (4096, 10), (512, 1000), (32, 32000)):
    shape = f"{b}x{c}"
    z = (torch.rand(b, c, dtype=torch.float32) * 2 - 1) * 4
    y = (torch.arange(b) * 7919) % c
    emit("stablemax", f"stablemax_{shape}", "official",
         seconds_per_call(lambda: s(z) / s(z).sum(dim=-1, keepdim=True)))
    zg = z.clone().requires_grad_(True)

    def ce():
        loss = stablemax_cross_entropy(zg, y)
        return torch.autograd.grad(loss, zg)

    emit("stablemax", f"ce_fwd_bwd_{shape}", "official", seconds_per_call(ce))
