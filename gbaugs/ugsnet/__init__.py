"""UGSNet: the ~1 m deep-learning path (Shi et al. 2023, ESSD 15:555-577, UGS-1m).

A parallel module behind the ``dl`` extra (``pip install "gbaugs[dl]"``); the rest of
gbaugs never imports torch. Networks are written in plain ``torch.nn`` (no torchvision,
no timm, no pretrained weights: training starts from scratch or from a checkpoint).

- :mod:`gbaugs.ugsnet.config` — network and training settings, the paper's and a tiny one;
- :mod:`gbaugs.ugsnet.network` — ResNet-50 backbone with enhanced coordinate attention,
  decoder, point head (UGSNet) and the discriminator;
- :mod:`gbaugs.ugsnet.points` — PointRend-style point selection and sampling;
- :mod:`gbaugs.ugsnet.losses` — Dice + point cross-entropy, adversarial losses (eqs. 1-7);
- :mod:`gbaugs.ugsnet.data` — UGSet-format tiles, the 5:2:3 split, augmentation;
- :mod:`gbaugs.ugsnet.training` — pre-training, adversarial adaptation, checkpoints, metrics;
- :mod:`gbaugs.ugsnet.inference` — sliding-window prediction of GeoTIFFs of any size,
  mosaic, boundary mask, the same product format as the W-SVM maps;
- :mod:`gbaugs.ugsnet.synthetic` — small synthetic tiles and scenes for tests and demos.
- :mod:`gbaugs.ugsnet.cli` — ``gbaugs ugsnet …`` (data, pre-training, adaptation,
  evaluation, prediction).
"""

from __future__ import annotations

from gbaugs.errors import ConfigError

__all__ = ["require_torch"]


def require_torch():
    """Import torch or explain how to get it."""
    try:
        import torch
    except ImportError as exc:
        raise ConfigError("UGSNet needs PyTorch, which is not installed",
                          hint='pip install "gbaugs[dl]"') from exc
    return torch
