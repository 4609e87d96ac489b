"""Anchors for the sinkhorn group at B = 256, C = 1000, 20 iterations, eps 0.1, T 2, one thread:
POT (ot.dist with the cityblock metric + ot.sinkhorn, uniform marginals) for the forward pass,
and SinKD's loss.py (class Sinkhorn) under PyTorch autograd for forward+backward."""
import numpy as np
import ot
import torch
import torch.nn.functional as F

from _common import emit, seconds_per_call

B, C, EPS, IT, TS = 256, 1000, 0.1, 20, 2.0
torch.manual_seed(0)
z0 = (torch.rand(B, C) * 2 - 1) * 4
v = (torch.rand(B, C) * 2 - 1) * 4


def pot_forward():
    ps = F.softmax(z0 / TS, 1).numpy()
    pt = F.softmax(v / TS, 1).numpy()
    M = ot.dist(ps, pt, metric="cityblock")
    a = np.full(B, 1.0 / B)
    P = ot.sinkhorn(a, a, M, EPS, numItermax=IT, stopThr=0.0)
    return float((P * M).sum())


def sinkd(z):
    ps, pt = F.softmax(z / TS, 1), F.softmax(v / TS, 1)
    w = torch.cdist(ps, pt, p=1)
    x = torch.exp(-w / EPS)
    for _ in range(IT):
        x = x / x.sum(dim=1, keepdim=True)
        x = x / x.sum(dim=0, keepdim=True)
    return 0.001 * (x * w).sum()


z = z0.clone().requires_grad_(True)


def torch_step():
    z.grad = None
    sinkd(z).backward()


def torch_forward():
    with torch.no_grad():
        sinkd(z0)


emit("sinkhorn", "forward_256x1000", "pot", seconds_per_call(pot_forward))
emit("sinkhorn", "forward_256x1000", "pytorch", seconds_per_call(torch_forward))
emit("sinkhorn", "fwd_bwd_unrolled_256x1000", "pytorch", seconds_per_call(torch_step))
emit("sinkhorn", "fwd_bwd_envelope_256x1000", "pytorch", seconds_per_call(torch_step))
