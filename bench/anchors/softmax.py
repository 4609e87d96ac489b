"""PyTorch anchors for the softmax group: F.softmax, F.log_softmax and F.cross_entropy
forward+backward (autograd, mean reduction; also with label_smoothing=0.1 at batch 512), float32,
one thread. Shapes are (batch, classes)."""
import torch
import torch.nn.functional as F

from _common import emit, seconds_per_call

for b, c in ((512, 10), (4096, 10), (512, 1000), (32, 32000)):
    shape = f"{b}x{c}"
    z = (torch.rand(b, c, dtype=torch.float32) * 2 - 1) * 4
    y = (torch.arange(b) * 7919) % c
    emit("softmax", f"softmax_{shape}", "pytorch", seconds_per_call(lambda: F.softmax(z, dim=1)))
    emit("softmax", f"log_softmax_{shape}", "pytorch", seconds_per_call(lambda: F.log_softmax(z, dim=1)))
    zg = z.clone().requires_grad_(True)

    def ce():
        loss = F.cross_entropy(zg, y)
        return torch.autograd.grad(loss, zg)

    emit("softmax", f"ce_fwd_bwd_{shape}", "pytorch", seconds_per_call(ce))

    if b == 512:
        def ce_smooth():
            loss = F.cross_entropy(zg, y, label_smoothing=0.1)
            return torch.autograd.grad(loss, zg)

        emit("softmax", f"ce_smooth_fwd_bwd_{shape}", "pytorch", seconds_per_call(ce_smooth))
