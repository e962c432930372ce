"""UGSNet pre-training, adversarial adaptation, evaluation and checkpoints.

Pre-training (paper 3.3.1, 3.4): Adam, learning rate constant for the first half of the
epochs then decaying linearly to 0; the generator's ``L_ugs`` on augmented training crops;
after every epoch the validation split is predicted whole (refined, full-resolution
output) and scored; ``best.pt`` keeps the epoch with the highest validation F1, ``last.pt``
the latest state, from which ``resume`` continues (model, optimizer, schedule, epoch,
history and the random state).

Adaptation (paper 3.3.2): the pre-trained generator G and a new discriminator D, Adam for
both; each iteration draws a labelled source batch and an unlabelled target batch
(random crops of the target images), then (1) D learns to tell ``softmax(G(I_s))`` (1)
from ``softmax(G(I_t))`` (0) on detached predictions (eq. 5), and (2) G minimises
``L_ugs(I_s) + λ·L_adv(I_t)`` (eqs. 6-7) with D frozen.

Device: CUDA when available (with mixed precision, bfloat16 where supported), else CPU.
Seeds fix every random draw (augmentation, point sampling, batches, initial weights); on
the CPU the same seed gives the same weights.

Checkpoints are ``torch.save`` dictionaries of tensors and plain values (``format:
gbaugs-ugsnet/1``, the network config, state dicts, epoch, history), loadable with
``weights_only=True``; written to a temporary file and renamed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.errors import InputDataError
from gbaugs.io.atomic import atomic_path, write_json
from gbaugs.ugsnet import require_torch
from gbaugs.ugsnet.config import AdaptConfig, NetConfig, TrainConfig
from gbaugs.ugsnet.data import (
    Tile,
    augment,
    discover,
    read_image,
    read_label,
    target_windows,
    tile_rng,
)

FORMAT = "gbaugs-ugsnet/1"
Log = Callable[[str], None]


def choose_device(name: str = "auto"):
    torch = require_torch()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _autocast(device, enabled: bool):
    torch = require_torch()
    if device.type == "cuda" and enabled:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    import contextlib

    return contextlib.nullcontext()


def confusion_metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Precision, recall, F1, IoU and overall accuracy of the UGS class."""
    nan = float("nan")
    precision = tp / (tp + fp) if tp + fp else nan
    recall = tp / (tp + fn) if tp + fn else nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else nan
    iou = tp / (tp + fp + fn) if tp + fp + fn else nan
    total = tp + fp + fn + tn
    return {"precision": precision, "recall": recall, "f1": f1, "iou": iou,
            "oa": (tp + tn) / total if total else nan, "pixels": total}


def build(cfg: NetConfig, seed: int, device):
    torch = require_torch()
    from gbaugs.ugsnet.network import UGSNet

    torch.manual_seed(seed)
    return UGSNet(cfg).to(device)


def save_checkpoint(path: Path, **content: Any) -> Path:
    torch = require_torch()
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **content}, tmp)
    return path


def load_checkpoint(path: str | Path, device=None) -> dict[str, Any]:
    torch = require_torch()
    path = Path(path)
    if not path.exists():
        raise InputDataError("checkpoint not found", where=path)
    try:
        ck = torch.load(path, map_location=device or "cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign/corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputDataError(f"not a readable checkpoint ({type(exc).__name__}: {first})",
                             where=path, hint="use a best.pt/last.pt/adapted.pt written by "
                                              "gbaugs") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise InputDataError("not a gbaugs UGSNet checkpoint", where=path,
                             hint="use a best.pt/last.pt written by 'gbaugs ugsnet train'")
    return ck


def load_model(path: str | Path, device=None):
    """The generator of a checkpoint, in evaluation mode."""
    from gbaugs.ugsnet.network import UGSNet

    ck = load_checkpoint(path, device)
    model = UGSNet(NetConfig.from_dict(ck["net"]))
    model.load_state_dict(ck["model"])
    return model.to(device or "cpu").eval()


def _batch(tiles: list[Tile], idx: list[int], cfg: TrainConfig | AdaptConfig, epoch: int):
    torch = require_torch()
    images, labels = [], []
    for i in idx:
        img = read_image(tiles[i].image, cfg.scale)
        lab = read_label(tiles[i].label)
        if img.shape[1:] != lab.shape:
            raise InputDataError(f"image {img.shape[1:]} and label {lab.shape} differ in "
                                 "size", where=tiles[i].image)
        rng = tile_rng(cfg.seed, epoch, i)
        if isinstance(cfg, TrainConfig):
            a, b = augment(img, lab, cfg.crop, rng, cfg.rotate_probability,
                           cfg.rotate_degrees, cfg.flip_probability)
        else:
            a, b = augment(img, lab, cfg.crop, rng)
        images.append(a)
        labels.append(b)
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(labels))


def evaluate(model, tiles: list[Tile], device, scale: float | None = None,
             batch_size: int = 4) -> dict[str, float]:
    """Scores of the refined prediction of whole tiles against their labels."""
    torch = require_torch()
    counts = np.zeros(4, np.int64)  # tp, fp, fn, tn
    model.eval()
    with torch.no_grad():
        for start in range(0, len(tiles), batch_size):
            group = tiles[start:start + batch_size]
            x = torch.from_numpy(np.stack([read_image(t.image, scale) for t in group]))
            y = np.stack([read_label(t.label) for t in group]).astype(bool)
            pred = model(x.to(device))["logits"].argmax(1).cpu().numpy().astype(bool)
            counts += [np.sum(pred & y), np.sum(pred & ~y), np.sum(~pred & y),
                       np.sum(~pred & ~y)]
    return confusion_metrics(*(int(c) for c in counts))


def _finite(obj: Any) -> Any:
    """NaN (e.g. precision with no UGS predicted) → None, for JSON."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _lr_factor(epoch: int, epochs: int) -> float:
    """1 for the first half of the epochs, then a linear decay towards 0 (the last epoch
    runs at 1/(n + 1) of the rate, n = epochs in the second half)."""
    half = epochs // 2
    return 1.0 if epoch < half else (epochs - epoch) / (epochs - half + 1)


def pretrain(data: str | Path, out: str | Path, net: NetConfig, cfg: TrainConfig, *,
             resume: str | Path | None = None, log: Log = print) -> dict[str, Any]:
    """Pre-train UGSNet on a UGSet-format folder; writes ``best.pt``, ``last.pt`` and
    ``history.json`` in ``out``; returns the history and the best validation scores."""
    torch = require_torch()
    from gbaugs.ugsnet.losses import ugs_loss

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    split = discover(data, cfg.seed)
    if not split["train"] or not split["val"]:
        raise InputDataError("the dataset needs training and validation tiles", where=data)
    device = choose_device(cfg.device)
    model = build(net, cfg.seed, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lambda e: _lr_factor(e, cfg.epochs))
    history: list[dict[str, Any]] = []
    best_f1, start = -1.0, 0
    gen = torch.Generator(device=device.type).manual_seed(cfg.seed)
    if resume is not None:
        ck = load_checkpoint(resume, device)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        history, best_f1, start = ck["history"], ck["best_f1"], ck["epoch"] + 1
        gen.set_state(ck["generator"])
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
            group["lr"] = base * _lr_factor(start, cfg.epochs)  # the schedule may be longer
        log(f"resuming after epoch {ck['epoch'] + 1}")
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and cfg.amp)
    train = split["train"]
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(
            cfg.seed * 1000 + epoch)).tolist()
        losses = []
        for b in range(0, len(order), cfg.batch_size):
            x, y = _batch(train, order[b:b + cfg.batch_size], cfg, epoch)
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, cfg.amp):
                loss = ugs_loss(model(x, generator=gen), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        scores = evaluate(model, split["val"], device, cfg.scale, cfg.batch_size)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)),
                  "lr": lr, "seconds": time.perf_counter() - t0,
                  **{f"val_{k}": v for k, v in scores.items()}}
        history.append(record)
        improved = scores["f1"] > best_f1
        if improved:
            best_f1 = scores["f1"]
        state = {"net": net.to_dict(), "train": asdict(cfg), "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "epoch": epoch, "best_f1": best_f1, "history": history,
                 "generator": gen.get_state()}
        save_checkpoint(out / "last.pt", **state)
        if improved:
            save_checkpoint(out / "best.pt", **state)
        write_json(out / "history.json", _finite(history))
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {record['loss']:.4f}, val F1 "
            f"{scores['f1']:.4f}, IoU {scores['iou']:.4f}{' (best)' if improved else ''}")
    return {"history": history, "best_f1": best_f1, "device": str(device)}


def adversarial_step(generator, discriminator, opt_g, opt_d, source_x, source_y, target_x,
                     weight: float, gen=None) -> dict[str, float]:
    """One adaptation iteration (D first, then G with D frozen); returns the losses."""
    torch = require_torch()
    import torch.nn.functional as F

    from gbaugs.ugsnet.losses import adversarial_loss, discriminator_loss, ugs_loss

    generator.train()
    discriminator.train()
    out_s = generator(source_x, generator=gen)
    out_t = generator(target_x, generator=gen)
    # P ∈ R^{H×W×C}: the softmax prediction at the input's size (paper 3.2)
    p_s = torch.softmax(F.interpolate(out_s["coarse"], size=source_x.shape[-2:],
                                      mode="bilinear", align_corners=False), dim=1)
    p_t = torch.softmax(F.interpolate(out_t["coarse"], size=target_x.shape[-2:],
                                      mode="bilinear", align_corners=False), dim=1)
    for p in discriminator.parameters():
        p.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    loss_d = discriminator_loss(discriminator(p_s.detach()), discriminator(p_t.detach()))
    loss_d.backward()
    opt_d.step()
    for p in discriminator.parameters():
        p.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    loss_ugs = ugs_loss(out_s, source_y)
    loss_adv = adversarial_loss(discriminator(p_t))
    (loss_ugs + weight * loss_adv).backward()
    opt_g.step()
    return {"d": loss_d.item(), "ugs": loss_ugs.item(), "adv": loss_adv.item()}


def adapt(checkpoint: str | Path, source: str | Path, target: list[Path], out: str | Path,
          cfg: AdaptConfig, *, log: Log = print) -> dict[str, Any]:
    """Adapt a pre-trained UGSNet to target images; writes ``adapted.pt`` (the generator,
    loadable like a pre-trained checkpoint, plus the discriminator) and ``adapt.json``."""
    torch = require_torch()
    from gbaugs.ugsnet.network import Discriminator

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not target:
        raise InputDataError("no target images given", hint="pass GeoTIFF/PNG images of the "
                                                            "target city")
    device = choose_device(cfg.device)
    ck = load_checkpoint(checkpoint, device)
    net = NetConfig.from_dict(ck["net"])
    generator = build(net, cfg.seed, device)
    generator.load_state_dict(ck["model"])
    torch.manual_seed(cfg.seed)
    discriminator = Discriminator(net.num_classes, cfg.discriminator_widths).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_generator)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_discriminator)
    tiles = discover(source, cfg.seed)["train"]
    rng = np.random.default_rng(cfg.seed)
    windows = target_windows([Path(p) for p in target], cfg.crop, rng)
    gen = torch.Generator(device=device.type).manual_seed(cfg.seed)
    history = []
    t0 = time.perf_counter()
    for it in range(cfg.iterations):
        idx = rng.integers(0, len(tiles), cfg.batch_size).tolist()
        xs, ys = _batch(tiles, idx, cfg, it)
        xt = torch.from_numpy(np.stack([read_image(p, cfg.scale, window=w)
                                        for p, w in (next(windows)
                                                     for _ in range(cfg.batch_size))]))
        with _autocast(device, cfg.amp):
            losses = adversarial_step(generator, discriminator, opt_g, opt_d, xs.to(device),
                                      ys.to(device), xt.to(device), cfg.adversarial_weight,
                                      gen)
        history.append({"iteration": it + 1, **losses})
        last = it + 1 == cfg.iterations
        if (it + 1) % cfg.checkpoint_every == 0 or last:
            save_checkpoint(out / "adapted.pt", net=net.to_dict(), adapt=asdict(cfg),
                            model=generator.state_dict(),
                            discriminator=discriminator.state_dict(), iteration=it + 1,
                            history=history, source_checkpoint=str(checkpoint))
            log(f"iteration {it + 1}/{cfg.iterations}: L_D {losses['d']:.4f}, L_ugs "
                f"{losses['ugs']:.4f}, L_adv {losses['adv']:.4f}")
    summary = {"iterations": cfg.iterations, "seconds": time.perf_counter() - t0,
               "device": str(device), "final": history[-1] if history else None}
    write_json(out / "adapt.json", {"config": asdict(cfg), **summary})
    return summary
