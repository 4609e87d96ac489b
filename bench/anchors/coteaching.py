"""PyTorch anchor for the Co-teaching step: per-sample cross-entropy of two networks' logits,
argsort selection, the exchange, mean losses and autograd backward (one thread)."""
import torch
import torch.nn.functional as F

from _common import emit, seconds_per_call

for batch in (128, 4096):
    z1 = (torch.rand(batch, 10) * 2 - 1).requires_grad_(True)
    z2 = (torch.rand(batch, 10) * 2 - 1).requires_grad_(True)
    y = torch.arange(batch) * 7 % 10
    keep = int((1 - 0.5) * batch)

    def step():
        l1 = F.cross_entropy(z1, y, reduction="none")
        l2 = F.cross_entropy(z2, y, reduction="none")
        i1 = torch.argsort(l1.detach())[:keep]
        i2 = torch.argsort(l2.detach())[:keep]
        loss1 = l1[i2].mean()
        loss2 = l2[i1].mean()
        z1.grad = None
        z2.grad = None
        (loss1 + loss2).backward()

    emit("coteaching", f"step_B{batch}_C10", "pytorch", seconds_per_call(step))
