"""The DCGAN tutorial's training loop, for measuring ganlab against it.

This is the tutorial's step as written there (Sigmoid + BCELoss, two D backward passes,
``.item()`` on every statistic at every iteration), timed on images already on the device,
so that only the step itself is compared. Run ganlab on the same sizes with
``benchmarks/gpu_check.sh`` (or by hand) and compare images per second.

    python benchmarks/reference_dcgan.py --device cuda --steps 300 --batch-size 128
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn


def generator(nz: int, ngf: int, nc: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def discriminator(ndf: int, nc: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 8),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(999)
    torch.backends.cudnn.benchmark = True
    nz, ngf, ndf, nc = 100, 64, 64, 3
    net_g, net_d = generator(nz, ngf, nc).to(device), discriminator(ndf, nc).to(device)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = torch.rand(args.batch_size * 8, nc, 64, 64, device=device) * 2 - 1
    losses_g, losses_d = [], []

    def step(i: int) -> None:
        real = data[(i % 8) * args.batch_size : (i % 8 + 1) * args.batch_size]
        b = real.size(0)
        net_d.zero_grad()
        label = torch.full((b,), 1.0, device=device)
        output = net_d(real).view(-1)
        err_d_real = criterion(output, label)
        err_d_real.backward()
        d_x = output.mean().item()
        noise = torch.randn(b, nz, 1, 1, device=device)
        fake = net_g(noise)
        label.fill_(0.0)
        output = net_d(fake.detach()).view(-1)
        err_d_fake = criterion(output, label)
        err_d_fake.backward()
        d_g_z1 = output.mean().item()
        err_d = err_d_real + err_d_fake
        opt_d.step()
        net_g.zero_grad()
        label.fill_(1.0)
        output = net_d(fake).view(-1)
        err_g = criterion(output, label)
        err_g.backward()
        d_g_z2 = output.mean().item()
        opt_g.step()
        losses_g.append(err_g.item())
        losses_d.append(err_d.item())
        del d_x, d_g_z1, d_g_z2

    for i in range(args.warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(args.steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(
        f"reference tutorial step: {args.steps} steps of {args.batch_size} on {device}: "
        f"{seconds:.2f} s, {args.steps * args.batch_size / seconds:.0f} img/s"
    )


if __name__ == "__main__":
    main()
