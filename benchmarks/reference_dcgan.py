"""The DCGAN tutorial's training loop on its own, for measuring ganlab against it.

The tutorial's networks, and its step as written there
(`ganlab.commands.bench.reference.TutorialStep`:
Sigmoid + BCELoss, two D backward passes, ``.item()`` on every statistic at every
iteration), timed on images already on the device, so that only the step itself is compared.
``ganlab bench`` times the same step beside ganlab's loop in one process; this script needs
nothing but torch and ganlab's reference module, for ``benchmarks/gpu_check.sh``.

    python benchmarks/reference_dcgan.py --device cuda --steps 300 --batch-size 128
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from ganlab.commands.bench.reference import TutorialStep, images_per_second


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
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),  # the Sigmoid: in TutorialStep
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
    net_g.latent_shape = (nz, 1, 1)  # what TutorialStep draws its noise in
    step = TutorialStep(
        net_g,
        net_d,
        torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999)),
    )
    data = torch.rand(args.batch_size * 8, nc, 64, 64, device=device) * 2 - 1

    def batch(i: int) -> tuple[torch.Tensor]:
        return (data[(i % 8) * args.batch_size : (i % 8 + 1) * args.batch_size],)

    rate = images_per_second(step, batch, args.warmup, args.steps, device)
    print(
        f"reference tutorial step: {args.steps} steps of {args.batch_size} on {device}: "
        f"{rate:.0f} img/s"
    )


if __name__ == "__main__":
    main()
