"""PyTorch anchors for the kd group: the distillation losses written in torch (float32), forward
plus backward through autograd, one thread. Case names match bench/losses/bench_kd.cpp."""
import torch
import torch.nn.functional as F

from _common import emit, seconds_per_call

T = 4.0


def kd_kl(z, v, y):
    return F.kl_div(F.log_softmax(z / T, 1), F.softmax(v / T, 1), reduction="batchmean") * T * T


def reverse_kl(z, v, y):
    lp, lq = F.log_softmax(z / T, 1), F.log_softmax(v / T, 1)
    return (lp.exp() * (lp - lq)).sum() / z.shape[0] * T * T


def js(z, v, y):
    lp, lq = F.log_softmax(z / T, 1), F.log_softmax(v / T, 1)
    lm = torch.logaddexp(lp, lq) - 0.6931471805599453
    return 0.5 * ((lp.exp() * (lp - lm)).sum() + (lq.exp() * (lq - lm)).sum()) / z.shape[0] * T * T


def total_variation(z, v, y):
    return 0.5 * (F.softmax(z / T, 1) - F.softmax(v / T, 1)).abs().sum() / z.shape[0] * T * T


def logit_mse(z, v, y):
    return F.mse_loss(z, v)


def binary_kl(z, v, y):
    # KL(Bern(sigmoid(b)) || Bern(sigmoid(a))) = BCE(a; sigmoid(b)) - BCE(b; sigmoid(b)), per logit
    a, b = z / T, v / T
    pt = torch.sigmoid(b)
    kl = (F.binary_cross_entropy_with_logits(a, pt, reduction="none")
          - F.binary_cross_entropy_with_logits(b, pt, reduction="none"))
    return kl.sum() / z.shape[0] * T * T


def binary_kl_norm(z, v, y):
    d = torch.sigmoid((z - v) / T).clamp(1e-8, 1 - 1e-8)
    return (0.5 * torch.log(0.5 / d) + 0.5 * torch.log(0.5 / (1 - d))).sum() * T * T / z.shape[0]


def dkd(z, v, y, alpha=1.0, beta=8.0, temp=4.0):
    # mdistiller DKD.py
    gt = torch.zeros_like(z).scatter_(1, y.unsqueeze(1), 1).bool()
    other = ~gt
    ps, pt = F.softmax(z / temp, 1), F.softmax(v / temp, 1)

    def cat_mask(t):
        return torch.cat([(t * gt).sum(1, keepdim=True), (t * other).sum(1, keepdim=True)], 1)

    tckd = F.kl_div(torch.log(cat_mask(ps)), cat_mask(pt), reduction="sum") * temp ** 2 / z.shape[0]
    pt2 = F.softmax(v / temp - 1000.0 * gt, 1)
    lps2 = F.log_softmax(z / temp - 1000.0 * gt, 1)
    nckd = F.kl_div(lps2, pt2, reduction="sum") * temp ** 2 / z.shape[0]
    return alpha * tckd + beta * nckd


def logit_std_kd(z, v, y, temp=2.0):
    # torchdistill's LogitStdKDLoss: standardize with the unbiased std + 1e-7, then KD at T
    def standardize(x):
        return (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-7)

    zs, vs = standardize(z), standardize(v)
    return F.kl_div(F.log_softmax(zs / temp, 1), F.softmax(vs / temp, 1),
                    reduction="batchmean") * temp * temp


LOSSES = {"kd_kl": kd_kl, "dkd": dkd, "reverse_kl": reverse_kl, "js": js,
          "total_variation": total_variation, "logit_mse": logit_mse,
          "binary_kl": binary_kl, "binary_kl_norm": binary_kl_norm,
          "logit_std_kd": logit_std_kd}

for b, c in ((512, 10), (512, 100), (512, 1000)):
    z0 = (torch.rand(b, c) * 2 - 1) * 4
    v = (torch.rand(b, c) * 2 - 1) * 4
    y = (torch.arange(b) * 7919) % c
    for name, fn in LOSSES.items():
        z = z0.clone().requires_grad_(True)

        def step():
            z.grad = None
            fn(z, v, y).backward()

        emit("kd", f"{name}_{b}x{c}", "pytorch", seconds_per_call(step))
