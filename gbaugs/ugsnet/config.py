"""UGSNet settings (plain dataclasses, no torch): network, pre-training, adaptation.

Defaults are the paper's (Shi et al. 2023, Sect. 3.1-3.4). Where the paper is silent or
its public code is reported to differ from the text, the choice is an option:

- ``stem_stride`` — the 7 × 7 stem convolution's stride. The paper's coarse map is 1/4 of
  the input, which a standard ResNet stem (stride 2, then a stride-2 max-pool) gives; 1
  keeps the first convolution at full resolution (coarse map 1/2).
- ``eca_kernel`` — kernel of the ECA's third (2-D, channel) branch; the paper gives none:
  1 (a 1 × 1 convolution, like the directional branches) by default.
- ``fine_stage`` — which residual stage feeds the point head's fine features. The paper
  says "ResBlock-2"; counting the stem as stage 1 (PointRend's ``res2`` naming, which the
  paper follows) that is the first residual stage (1/4 resolution): 1 by default, 2 for
  the second residual stage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class NetConfig:
    """The UGSNet generator."""

    in_channels: int = 3
    """Image bands (3 = RGB, 4 = RGBN)."""
    num_classes: int = 2
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    """Bottleneck widths of the four residual stages (outputs are 4× wider)."""
    depths: tuple[int, int, int, int] = (3, 4, 6, 3)
    """Bottleneck blocks per stage: ResNet-50."""
    stem_channels: int = 64
    stem_stride: int = 2
    eca: bool = True
    """Enhanced coordinate attention after each residual stage (False: the ablation's base)."""
    eca_reduction: int = 32
    eca_kernel: int = 1
    decoder_channels: int = 96
    fine_stage: int = 1
    point_head: bool = True
    points: int = 1024
    """N: points re-classified per image (training and each inference step)."""
    oversample: int = 3
    """k: candidates drawn per point at training time."""
    importance: float = 0.75
    """β: share of the N training points taken among the most uncertain candidates."""
    subdivision_steps: int = 2
    """Inference: ×2 upsampling steps from the coarse map (2: 1/4 → 1/1)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> NetConfig:
        d = dict(d)
        for key in ("widths", "depths"):
            if key in d:
                d[key] = tuple(d[key])
        return NetConfig(**d)


def paper_net(in_channels: int = 3) -> NetConfig:
    """The paper's UGSNet (ResNet-50, 96 decoder channels, N = 1024, k = 3, β = 0.75)."""
    return NetConfig(in_channels=in_channels)


def tiny_net(in_channels: int = 3) -> NetConfig:
    """A few-thousand-parameter UGSNet for tests and CPU demos (same architecture)."""
    return NetConfig(in_channels=in_channels, widths=(4, 8, 8, 16), depths=(1, 1, 1, 1),
                     stem_channels=8, eca_reduction=4, decoder_channels=8, points=64)


@dataclass(frozen=True)
class TrainConfig:
    """Pre-training on UGSet-format tiles (paper: 200 epochs, batch 8, Adam 1e-4)."""

    epochs: int = 200
    batch_size: int = 8
    lr: float = 1e-4
    """Constant for the first half of the epochs, then linear decay to 0."""
    crop: int = 256
    rotate_probability: float = 0.2
    rotate_degrees: float = 30.0
    flip_probability: float = 0.3
    seed: int = 0
    device: str = "auto"
    """``auto``: CUDA when available (with mixed precision), else CPU."""
    amp: bool = True
    """Mixed precision on CUDA (ignored on the CPU)."""
    workers: int = 0
    scale: float | None = None
    """Divide pixel values by this; ``None``: 255 for 8-bit images (required otherwise)."""


@dataclass(frozen=True)
class AdaptConfig:
    """Adversarial adaptation to a target city (paper: 10,000 iterations, batch 2, 1e-4)."""

    iterations: int = 10_000
    batch_size: int = 2
    lr_generator: float = 1e-4
    lr_discriminator: float = 1e-4
    adversarial_weight: float = 1.0
    """λ in ``L_G = L_ugs + λ·L_adv`` (paper eq. 7: 1; Tsai et al. 2018 used 0.001)."""
    crop: int = 256
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    scale: float | None = None
    checkpoint_every: int = 1000
    discriminator_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    """Output channels of the discriminator's first four 4 × 4 convolutions (the fifth
    gives 1)."""
