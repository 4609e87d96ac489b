"""PyTorch anchor for the multisample group: a loop of M dropout + linear + cross_entropy passes
(mean of the M losses), autograd backward to h, W and b; one thread, float32."""
import torch
import torch.nn.functional as F

from _common import emit, seconds_per_call

M, B, K = 8, 256, 512
for C in (10, 1000):
    g = torch.Generator().manual_seed(0)
    h = (torch.rand(B, K, generator=g) * 2 - 1).requires_grad_()
    W = ((torch.rand(C, K, generator=g) * 2 - 1) * 0.05).requires_grad_()
    b = torch.zeros(C, requires_grad=True)
    y = torch.randint(0, C, (B,), generator=g)

    def step():
        h.grad = W.grad = b.grad = None
        loss = 0
        for _ in range(M):
            loss = loss + F.cross_entropy(F.linear(F.dropout(h, 0.5, True), W, b), y)
        (loss / M).backward()

    emit("multisample", f"M8_B256_K512_C{C}_fwd_bwd", "pytorch", seconds_per_call(step))
