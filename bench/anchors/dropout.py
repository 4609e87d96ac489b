"""PyTorch anchors for the dropout group: F.dropout (training) and a tensor copy, one thread."""
import torch
import torch.nn.functional as F

from _common import emit, seconds_per_call

for n, size in ((1 << 16, "64Ki"), (1 << 20, "1Mi"), (1 << 24, "16Mi")):
    x = torch.rand(n // 1024, 1024, dtype=torch.float32) * 2 - 1
    y = torch.empty_like(x)
    emit("dropout", f"forward_{size}", "pytorch",
         seconds_per_call(lambda: F.dropout(x, p=0.5, training=True)))
    emit("dropout", f"forward_{size}", "pytorch_copy", seconds_per_call(lambda: y.copy_(x)))
    # Backward of dropout in PyTorch multiplies by the saved mask and the scale.
    mask = (torch.rand_like(x) > 0.5).to(torch.float32)
    emit("dropout", f"backward_bitmask_{size}", "pytorch",
         seconds_per_call(lambda: torch.mul(torch.mul(x, mask), 2.0)))
