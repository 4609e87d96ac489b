#!/usr/bin/python3
"""Golden values for the distillation losses, from PyTorch 1.13 (float64, autograd) and POT.

Run with the Debian torch and POT: /usr/bin/python3 tests/golden/gen_kd.py
Writes kd.txt beside this script. Format, one record per line: <name> <count> <v1> ... <vcount>.
Matrices are written in the order of a row-major (batch, classes) tensor, which is regula's
column-major classes x batch layout; the Sinkhorn cost and plan (B x B, rows = student samples)
are written column-major (transposed before flattening) to match regula's Matrix.

Each loss is written from its authors' formula in PyTorch:
- kd_kl: F.kl_div(log_softmax(z/T), softmax(v/T), reduction='batchmean') * T^2 (mdistiller
  KD.py, torchdistill KDLoss), and reduction='mean' for the mean-vs-batchmean check;
- reverse_kl, js, tv: the textbook formulas on softmax(z/T), softmax(v/T), times T^2;
- logit_mse: F.mse_loss(z, v); logit_std_kd: torchdistill LogitStdKDLoss's standardization
  (unbiased std + 1e-7) then the KD loss;
- binary_kl, binary_kl_norm: DHKD's BinaryKL.py / BinaryKLNorm.py (clamp inactive here);
- dkd: mdistiller DKD.py (cat_mask of gathered probabilities, -1000 mask), in float64 with
  moderate logits, where its underflow cannot occur;
- sinkhorn: SinKD loss.py class Sinkhorn (cdist p=1, exp(-W/eps), row/column divisions,
  20 iterations, lambda 1e-3) with autograd through every step; POT's ot.dist(cityblock) and
  ot.sinkhorn (converged, uniform marginals 1/B) for the cost and the plan.
"""
import os

import numpy as np
import ot
import torch
import torch.nn.functional as F

torch.manual_seed(20240607)
B, C = 5, 7
T = 4.0
out = []


def put(name, t):
    v = t.detach().reshape(-1).tolist() if torch.is_tensor(t) else list(np.asarray(t).reshape(-1))
    out.append(name + " " + str(len(v)) + " " + " ".join(repr(float(x)) for x in v))


z0 = torch.randn(B, C, dtype=torch.float64) * 3
v0 = torch.randn(B, C, dtype=torch.float64) * 3
labels = torch.tensor([3, 0, 6, 2, 5])
put("z", z0)
put("v", v0)
put("labels", labels)


def record(name, fn):
    z = z0.clone().requires_grad_(True)
    loss = fn(z, v0)
    (g,) = torch.autograd.grad(loss, z)
    put(name + "_loss", loss.reshape(1))
    put(name + "_grad", g)


def kd_kl(z, v, red="batchmean"):
    return F.kl_div(F.log_softmax(z / T, 1), F.softmax(v / T, 1), reduction=red) * T * T


def reverse_kl(z, v):
    lp, lq = F.log_softmax(z / T, 1), F.log_softmax(v / T, 1)
    return (lp.exp() * (lp - lq)).sum() / B * T * T


def js(z, v):
    p, q = F.softmax(z / T, 1), F.softmax(v / T, 1)
    m = 0.5 * (p + q)
    return (0.5 * (p * (p.log() - m.log())).sum() + 0.5 * (q * (q.log() - m.log())).sum()) / B * T * T


def tv(z, v):
    p, q = F.softmax(z / T, 1), F.softmax(v / T, 1)
    return 0.5 * (p - q).abs().sum() / B * T * T


def logit_mse(z, v):
    return F.mse_loss(z, v)


def standardize(x):
    return (x - x.mean(dim=-1, keepdim=True)) / (1e-7 + x.std(dim=-1, keepdim=True))


def logit_std_kd(z, v):
    return kd_kl(standardize(z), standardize(v))


def binary_kl(z, v):
    ps, pt = torch.sigmoid(z / T), torch.sigmoid(v / T)
    kl = pt * (pt.log() - ps.log()) + (1 - pt) * ((1 - pt).log() - (1 - ps).log())
    return kl.sum() * T * T / B


def binary_kl_norm(z, v):
    d = torch.sigmoid((z - v) / T).clamp(1e-8, 1 - 1e-8)
    return (0.5 * torch.log(0.5 / d) + 0.5 * torch.log(0.5 / (1 - d))).sum() * T * T / B


def dkd(z, v, alpha=1.0, beta=8.0):
    gt = torch.zeros_like(z).scatter_(1, labels.unsqueeze(1), 1).bool()
    other = ~gt
    ps, pt = F.softmax(z / T, 1), F.softmax(v / T, 1)

    def cat_mask(t):
        return torch.cat([(t * gt).sum(1, keepdim=True), (t * other).sum(1, keepdim=True)], 1)

    tckd = F.kl_div(torch.log(cat_mask(ps)), cat_mask(pt), reduction="sum") * T * T / B
    pt2 = F.softmax(v / T - 1000.0 * gt, 1)
    lps2 = F.log_softmax(z / T - 1000.0 * gt, 1)
    nckd = F.kl_div(lps2, pt2, reduction="sum") * T * T / B
    return alpha * tckd + beta * nckd


record("kd_kl", kd_kl)
record("kd_kl_mean", lambda z, v: kd_kl(z, v, "mean"))
record("reverse_kl", reverse_kl)
record("js", js)
record("total_variation", tv)
record("logit_mse", logit_mse)
record("logit_std_kd", logit_std_kd)
record("binary_kl", binary_kl)
record("binary_kl_norm", binary_kl_norm)
record("dkd", dkd)
record("dkd_tckd", lambda z, v: dkd(z, v, 1.0, 0.0))
record("dkd_nckd", lambda z, v: dkd(z, v, 0.0, 1.0))

# Sinkhorn KD as in SinKD loss.py (T = 2, eps = 0.1, 20 iterations, lambda = 1e-3).
TS, EPS, LAM, IT = 2.0, 0.1, 1e-3, 20


def sinkhorn_kd(z, v, eps=EPS, iters=IT):
    ps, pt = F.softmax(z / TS, 1), F.softmax(v / TS, 1)
    w = torch.cdist(ps, pt, p=1)
    x = torch.exp(-w / eps)
    for _ in range(iters):
        x = x / x.sum(dim=1, keepdim=True)
        x = x / x.sum(dim=0, keepdim=True)
    return LAM * (x * w).sum(), x, w


z = z0.clone().requires_grad_(True)
loss, plan, w = sinkhorn_kd(z, v0)
(g,) = torch.autograd.grad(loss, z)
put("sinkhorn_loss", loss.reshape(1))
put("sinkhorn_grad", g)
put("sinkhorn_plan", plan.t())
put("sinkhorn_cost", w.t())

# POT: the same cost through ot.dist (cityblock) and the converged plan for uniform marginals.
ps = F.softmax(z0 / TS, 1).numpy()
pt = F.softmax(v0 / TS, 1).numpy()
M = ot.dist(ps, pt, metric="cityblock")
a = np.full(B, 1.0 / B)
P = ot.sinkhorn(a, a, M, EPS, numItermax=100000, stopThr=1e-15)
put("pot_cost", M.T)
put("pot_plan", P.T)
put("pot_cost_value", np.array([float((P * M).sum())]))

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "kd.txt"), "w") as f:
    f.write("# generated by gen_kd.py (torch %s, POT %s), float64\n" % (torch.__version__, ot.__version__))
    f.write("\n".join(out) + "\n")
