"""UGSNet speed at the paper's sizes on whatever device is present.

Training: one pre-training step (forward with point sampling, L_ugs, backward, Adam) on a
batch of 8 random 256 × 256 crops (paper 3.4), and one adaptation step (batch 2: source
and target through the generator, discriminator and generator updates). Inference:
512 × 512 tiles per second with point-head refinement (N = 1024, two subdivision steps),
batch 4. The obvious alternative measured beside it is the paper's ablation "base"
network (the same ResNet-50 and decoder without ECA modules and point head), so the
ratio is the cost of UGSNet's two additions. CUDA runs use mixed precision.

    python benchmarks/bench_ugsnet.py [--steps 3] [--tiles 8] [--device auto]
"""

from __future__ import annotations

import argparse
import dataclasses
import time


def main() -> None:
    import torch

    from gbaugs.ugsnet.config import paper_net
    from gbaugs.ugsnet.losses import ugs_loss
    from gbaugs.ugsnet.network import Discriminator, UGSNet
    from gbaugs.ugsnet.training import _autocast, adversarial_step, choose_device

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--tiles", type=int, default=8)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = choose_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"CPU, {torch.get_num_threads()} threads")
    print(f"device: {name}; torch {torch.__version__}")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed(fn, n):
        fn()  # warm-up
        sync()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        return (time.perf_counter() - t) / n

    results = {}
    for label, cfg in (("UGSNet", paper_net()),
                       ("base (no ECA, no point head)",
                        dataclasses.replace(paper_net(), eca=False, point_head=False))):
        torch.manual_seed(0)
        net = UGSNet(cfg).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        x = torch.rand(8, 3, 256, 256, device=device)
        y = (torch.rand(8, 256, 256, device=device) > 0.5).long()

        def step(net=net, opt=opt, x=x, y=y):
            net.train()
            opt.zero_grad(set_to_none=True)
            with _autocast(device, True):
                loss = ugs_loss(net(x), y)
            loss.backward()
            opt.step()

        tiles = torch.rand(4, 3, 512, 512, device=device)

        def infer(net=net, tiles=tiles):
            net.eval()
            with torch.no_grad(), _autocast(device, True):
                net(tiles)

        train_s = timed(step, args.steps)
        infer_s = timed(infer, max(1, args.tiles // 4))
        results[label] = (train_s, 4 / infer_s)
        print(f"{label}: training step (batch 8 × 256²) {train_s:.3f} s; inference "
              f"{4 / infer_s:.2f} tiles/s (512², batch 4)")
        if label == "UGSNet":
            d = Discriminator().to(device)
            opt_d = torch.optim.Adam(d.parameters(), lr=1e-4)
            xs, ys = x[:2], y[:2]
            xt = torch.rand(2, 3, 256, 256, device=device)

            def adv(net=net, d=d, opt=opt, opt_d=opt_d, xs=xs, ys=ys, xt=xt):
                with _autocast(device, True):
                    adversarial_step(net, d, opt, opt_d, xs, ys, xt, 1.0)

            print(f"UGSNet: adaptation step (batch 2 × 256², G + D) "
                  f"{timed(adv, args.steps):.3f} s")
    (ut, ui), (bt, bi) = results.values()
    print(f"UGSNet vs base: training step {ut / bt:.2f}× the time, inference "
          f"{bi / ui:.2f}× the time per tile")


if __name__ == "__main__":
    main()
