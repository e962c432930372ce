"""``gbaugs ugsnet …``: synthetic data, pre-training, adaptation, evaluation, prediction.

torch is imported only inside the commands, so ``gbaugs`` works without the ``dl`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="UGSNet, the ~1 m deep-learning path (needs the dl extra: pip "
                       "install 'gbaugs\\[dl]').", no_args_is_help=True)

Device = Annotated[str, typer.Option(help="auto (CUDA if available), cpu, cuda, cuda:1 …")]
Scale = Annotated[float | None, typer.Option(help="Divide pixel values by this (default: "
                                                   "255 for 8-bit images).")]


def _net(preset: str, bands: int):
    from gbaugs.errors import ConfigError
    from gbaugs.ugsnet.config import paper_net, tiny_net

    if preset not in ("paper", "tiny"):
        raise ConfigError(f"unknown preset {preset!r}", hint="paper or tiny")
    return (paper_net if preset == "paper" else tiny_net)(bands)


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to create.")],
    tiles: Annotated[int, typer.Option(help="Number of tiles.")] = 40,
    size: Annotated[int, typer.Option(help="Tile size, pixels.")] = 256,
    bands: Annotated[int, typer.Option(help="3 (RGB) or 4 (RGBN).")] = 3,
    seed: int = 0,
) -> None:
    """Write a synthetic UGSet-format dataset (out/set) and a 1 m scene (out/scene.tif)."""
    from gbaugs.ugsnet.synthetic import make_scene, make_tiles

    make_tiles(out / "set", n=tiles, size=size, seed=seed, bands=bands)
    make_scene(out / "scene.tif", seed=seed + 1, bands=bands, truth=out / "scene_truth.tif")
    typer.echo(f"{tiles} tiles in {out / 'set'}; scene {out / 'scene.tif'} with its truth")


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="UGSet-format folder.")],
    out: Annotated[Path, typer.Option(help="Folder for best.pt, last.pt, history.json.")],
    preset: Annotated[str, typer.Option(help="paper (ResNet-50) or tiny.")] = "paper",
    bands: Annotated[int, typer.Option(help="Image bands (3 RGB, 4 RGBN).")] = 3,
    epochs: int = 200,
    batch_size: int = 8,
    lr: float = 1e-4,
    crop: int = 256,
    seed: int = 0,
    device: Device = "auto",
    scale: Scale = None,
    resume: Annotated[Path | None, typer.Option(help="Continue from last.pt.")] = None,
) -> None:
    """Pre-train UGSNet (Adam, constant then linearly decaying learning rate)."""
    from gbaugs.ugsnet.config import TrainConfig
    from gbaugs.ugsnet.training import pretrain

    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, crop=crop, seed=seed,
                      device=device, scale=scale)
    result = pretrain(data, out, _net(preset, bands), cfg, resume=resume, log=typer.echo)
    typer.echo(f"best validation F1 {result['best_f1']:.4f} on {result['device']}; "
               f"checkpoints in {out}")


@app.command()
def adapt(
    source: Annotated[Path, typer.Argument(help="The labelled UGSet-format folder.")],
    target: Annotated[list[Path], typer.Argument(help="Unlabelled target-city images.")],
    checkpoint: Annotated[Path, typer.Option(help="A pre-trained checkpoint (best.pt).")],
    out: Annotated[Path, typer.Option(help="Folder for adapted.pt and adapt.json.")],
    iterations: int = 10_000,
    batch_size: int = 2,
    crop: int = 256,
    weight: Annotated[float, typer.Option(help="λ of the adversarial loss.")] = 1.0,
    seed: int = 0,
    device: Device = "auto",
    scale: Scale = None,
) -> None:
    """Adapt a pre-trained UGSNet to a target city with the discriminator."""
    from gbaugs.ugsnet.config import AdaptConfig
    from gbaugs.ugsnet.training import adapt as run_adapt

    cfg = AdaptConfig(iterations=iterations, batch_size=batch_size, crop=crop,
                      adversarial_weight=weight, seed=seed, device=device, scale=scale,
                      checkpoint_every=max(1, min(1000, iterations)))
    result = run_adapt(checkpoint, source, target, out, cfg, log=typer.echo)
    typer.echo(f"{result['iterations']} iterations in {result['seconds']:.1f} s on "
               f"{result['device']}; generator in {out / 'adapted.pt'}")


@app.command()
def evaluate(
    data: Annotated[Path, typer.Argument(help="UGSet-format folder.")],
    checkpoint: Annotated[Path, typer.Option(help="A checkpoint.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    device: Device = "auto",
    scale: Scale = None,
) -> None:
    """Precision, recall, F1, IoU and OA of a checkpoint on a split."""
    from gbaugs.errors import ConfigError
    from gbaugs.ugsnet.data import SPLITS, discover
    from gbaugs.ugsnet.training import choose_device, load_model
    from gbaugs.ugsnet.training import evaluate as run_eval

    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}", hint="train, val or test")
    dev = choose_device(device)
    scores = run_eval(load_model(checkpoint, dev), discover(data)[split], dev, scale)
    typer.echo(", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in scores.items()))


@app.command()
def predict(
    images: Annotated[list[Path], typer.Argument(help="GeoTIFFs to map (mosaicked).")],
    checkpoint: Annotated[Path, typer.Option(help="A checkpoint (best.pt or adapted.pt).")],
    out: Annotated[Path, typer.Option(help="The UGS map to write (COG, 1/0/255).")],
    boundary: Annotated[Path | None, typer.Option(help="Mask: city/urban boundary "
                                                       "polygons (any vector file).")] = None,
    tile: int = 512,
    overlap: int = 128,
    batch_size: int = 4,
    refine: Annotated[bool, typer.Option(help="Point-head refinement.")] = True,
    device: Device = "auto",
    scale: Scale = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out (never an "
                                                 "input).")] = False,
) -> None:
    """Sliding-window prediction of GeoTIFFs of any size into one masked COG."""
    from gbaugs.io.outputs import check_output
    from gbaugs.ugsnet.inference import predict_mosaic
    from gbaugs.ugsnet.training import choose_device, load_model

    check_output(out, [*images, checkpoint, boundary], overwrite=overwrite)
    dev = choose_device(device)
    mask = None
    if boundary is not None:
        from gbaugs.io.vector import read_vector_file

        mask = read_vector_file(boundary, what="boundary")
    result = predict_mosaic(load_model(checkpoint, dev), images, out, boundary=mask,
                            tile=tile, overlap=overlap, batch_size=batch_size, device=dev,
                            scale=scale, refine=refine, log=typer.echo)
    total = sum(p["ugs_ha"] for p in result["images"])
    typer.echo(f"UGS map written to {out} ({total:,.2f} ha UGS)")
