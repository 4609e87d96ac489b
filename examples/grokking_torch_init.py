#!/usr/bin/python3
"""Writes the official grokking loop's training split and initial weights for examples/grokking.

The authors' script seeds `random` and torch with --seed, builds all p^2 pairs (a, b) in the order
a-major, splits them with torch.utils.data.random_split into int(train_fraction * p^2) training
pairs and the rest, and then creates the bias-free MLP 2p -> w -> w -> p with nn.Linear's default
initialization, in that order, from torch's default generator. This script repeats exactly those
draws (nothing else draws in between) and writes them, so that `grokking --init FILE` starts from
the same split and weights as the official run with the same seed.

File layout (little endian): b"RGKI", int32 version (1), p, n_train, width, seed, 0 (reserved); then p^2 int32
pair indices (a * p + b), training pairs first in random_split's order; then the three weight
matrices as float32, each row-major out x in as torch stores it (w x 2p, w x w, p x w).

    /usr/bin/python3 examples/grokking_torch_init.py --seed 42 --out docs/results/grokking/torch_init_seed42.bin
"""
import argparse
import random
import struct

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--p", type=int, default=113)
    ap.add_argument("--train-frac", type=float, default=0.4)
    ap.add_argument("--width", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    random.seed(a.seed)
    torch.manual_seed(a.seed)
    n = a.p * a.p
    n_train = int(a.train_frac * n)
    # random_split draws one randperm of n from the default generator; pass a range so that the
    # indices are exactly the official ones without building the one-hot tensors.
    train, test = torch.utils.data.random_split(range(n), [n_train, n - n_train])
    order = list(train.indices) + list(test.indices)
    sizes = [2 * a.p, a.width, a.width, a.p]
    layers = [torch.nn.Linear(sizes[i], sizes[i + 1], bias=False) for i in range(3)]

    with open(a.out, "wb") as f:
        f.write(b"RGKI")
        f.write(struct.pack("<6i", 1, a.p, n_train, a.width, a.seed, 0))
        f.write(struct.pack("<%di" % n, *order))
        for layer in layers:
            w = layer.weight.detach().to(torch.float32).contiguous()
            f.write(w.numpy().astype("<f4").tobytes())
    print("torch %s, seed %d: %d training pairs of %d; first pairs %s; W1[0,:3] %s" %
          (torch.__version__, a.seed, n_train, n, order[:4], layers[0].weight[0, :3].tolist()))


if __name__ == "__main__":
    main()
