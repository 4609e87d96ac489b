"""PyTorch anchors for the robust group: the generalized cross-entropy (q = 0.7) and the symmetric
cross-entropy (alpha = 0.1, beta = 1, the one-hot target clipped at 1e-4) forward+backward, as
HanxunH/Active-Passive-Losses `loss.py` writes them (GeneralizedCrossEntropy, SCELoss: softmax,
the prediction clamped at 1e-7, one-hot targets), autograd, mean reduction, float32, one thread.
Shapes are (batch, classes)."""
import torch
import torch.nn.functional as F

from _common import emit, seconds_per_call

for b, c in ((512, 10), (512, 1000)):
    shape = f"{b}x{c}"
    z = ((torch.rand(b, c, dtype=torch.float32) * 2 - 1) * 4).requires_grad_(True)
    y = (torch.arange(b) * 7919) % c

    def gce():
        pred = torch.clamp(F.softmax(z, dim=1), min=1e-7, max=1.0)
        one_hot = F.one_hot(y, c).float()
        loss = ((1.0 - torch.pow(torch.sum(one_hot * pred, dim=1), 0.7)) / 0.7).mean()
        return torch.autograd.grad(loss, z)

    def sce():
        ce = F.cross_entropy(z, y)
        pred = torch.clamp(F.softmax(z, dim=1), min=1e-7, max=1.0)
        one_hot = torch.clamp(F.one_hot(y, c).float(), min=1e-4, max=1.0)
        rce = -1 * torch.sum(pred * torch.log(one_hot), dim=1)
        loss = 0.1 * ce + 1.0 * rce.mean()
        return torch.autograd.grad(loss, z)

    emit("robust", f"gce_fwd_bwd_{shape}", "pytorch", seconds_per_call(gce))
    emit("robust", f"sce_fwd_bwd_{shape}", "pytorch", seconds_per_call(sce))
