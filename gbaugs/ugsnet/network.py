"""UGSNet and its discriminator in plain ``torch.nn`` (Shi et al. 2023, Figs. 6-8).

Backbone: ResNet-50 (He et al. 2016): a 7 × 7 stem convolution, batch norm, ReLU and a
3 × 3 stride-2 max-pool, then four stages of bottleneck blocks ([3, 4, 6, 3], widths 64,
128, 256, 512 × expansion 4, strides 1, 2, 2, 2). After each stage an *enhanced
coordinate attention* (ECA) module re-weights the features: coordinate attention's two
1-D directional branches (Hou et al. 2021: average pooling along the width and along the
height, a shared 1 × 1 convolution, batch norm and h-swish, one 1 × 1 convolution and a
sigmoid per direction) and the paper's third, 2-D branch, which encodes the feature map
over the whole coordinate plane (1 × 1 reduction, batch norm, h-swish, a
``eca_kernel`` × ``eca_kernel`` convolution back to C channels, sigmoid); the three
attention maps multiply the input. The paper describes the third branch only in words
(Sect. 3.1.1); this is our reading of it.

Decoder: each stage's attended features → 1 × 1 convolution to 96 channels (+ BN, ReLU),
resized bilinearly to the first stage's grid (1/4 of the input), concatenated, two 3 × 3
convolutions → the coarse two-class logits.

Point head: an MLP that is one 1 × 1 convolution over the concatenation of the coarse
logits and the fine features sampled at each point (:mod:`gbaugs.ugsnet.points`). In
training the network returns the coarse logits and the point logits; in evaluation it
returns full-resolution logits refined by ``subdivision_steps`` rounds of ×2 upsampling
and re-prediction of the ``points`` most uncertain cells.

Discriminator (Tsai et al. 2018; paper Fig. 8): five 4 × 4 stride-2 convolutions with
64, 128, 256, 512 and 1 output channels and leaky ReLU (slope 0.2) between them, on the
softmax of the coarse prediction; its output is the logit of "source domain".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gbaugs.ugsnet.config import NetConfig
from gbaugs.ugsnet.points import most_uncertain_cells, point_sample, training_points

EXPANSION = 4


def _conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1 × 1 → 3 × 3 (stride) → 1 × 1 (× 4), identity or projection."""

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * EXPANSION
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class EnhancedCoordinateAttention(nn.Module):
    """ECA: height and width attention (coordinate attention) × a 2-D attention map."""

    def __init__(self, channels: int, reduction: int = 32, kernel: int = 1):
        super().__init__()
        mid = max(8, channels // reduction)
        self.reduce = nn.Sequential(nn.Conv2d(channels, mid, 1, bias=False),
                                    nn.BatchNorm2d(mid), nn.Hardswish())
        self.to_h = nn.Conv2d(mid, channels, 1)
        self.to_w = nn.Conv2d(mid, channels, 1)
        self.plane = nn.Sequential(nn.Conv2d(channels, mid, 1, bias=False),
                                   nn.BatchNorm2d(mid), nn.Hardswish(),
                                   nn.Conv2d(mid, channels, kernel, padding=kernel // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        pooled_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1)
        pooled_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        y = self.reduce(torch.cat([pooled_h, pooled_w], dim=2))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.to_h(y_h))  # (B, C, H, 1)
        a_w = torch.sigmoid(self.to_w(y_w.transpose(2, 3)))  # (B, C, 1, W)
        a_hw = torch.sigmoid(self.plane(x))  # (B, C, H, W)
        return x * a_h * a_w * a_hw


@dataclass
class Features:
    stages: list[torch.Tensor]
    """The four attended stage outputs (1/4, 1/8, 1/16, 1/32 with the default stem)."""


class Backbone(nn.Module):
    """ResNet-50 (configurable widths/depths) with an ECA module after each stage."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, cfg.stem_channels, 7, stride=cfg.stem_stride,
                      padding=3, bias=False),
            nn.BatchNorm2d(cfg.stem_channels), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1))
        cin = cfg.stem_channels
        self.stages = nn.ModuleList()
        self.attention = nn.ModuleList()
        self.channels: list[int] = []
        for i, (width, depth) in enumerate(zip(cfg.widths, cfg.depths, strict=True)):
            blocks = []
            for j in range(depth):
                blocks.append(Bottleneck(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * EXPANSION
            self.stages.append(nn.Sequential(*blocks))
            self.attention.append(EnhancedCoordinateAttention(cin, cfg.eca_reduction,
                                                              cfg.eca_kernel)
                                  if cfg.eca else nn.Identity())
            self.channels.append(cin)

    def forward(self, x: torch.Tensor) -> Features:
        x = self.stem(x)
        out = []
        for stage, attention in zip(self.stages, self.attention, strict=True):
            x = attention(stage(x))
            out.append(x)
        return Features(out)


class UGSNet(nn.Module):
    """The generator: backbone, decoder (coarse map) and point head."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg)
        d = cfg.decoder_channels
        self.lateral = nn.ModuleList(_conv_bn_relu(c, d, 1) for c in self.backbone.channels)
        self.fuse = nn.Sequential(_conv_bn_relu(4 * d, d, 3),
                                  nn.Conv2d(d, cfg.num_classes, 3, padding=1))
        fine = self.backbone.channels[cfg.fine_stage - 1]
        self.point_mlp = nn.Conv1d(cfg.num_classes + fine, cfg.num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def coarse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Coarse logits on the first stage's grid and the point head's fine features."""
        stages = self.backbone(x).stages
        size = stages[0].shape[-2:]
        lat = [F.interpolate(f(s), size=size, mode="bilinear", align_corners=False)
               if i else f(s) for i, (f, s) in enumerate(zip(self.lateral, stages,
                                                             strict=True))]
        return self.fuse(torch.cat(lat, dim=1)), stages[self.cfg.fine_stage - 1]

    def point_logits(self, coarse: torch.Tensor, fine: torch.Tensor, coords: torch.Tensor
                     ) -> torch.Tensor:
        feats = torch.cat([point_sample(coarse, coords), point_sample(fine, coords)], dim=1)
        return self.point_mlp(feats)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        coarse, fine = self.coarse(x)
        if self.training:
            out = {"coarse": coarse}
            if self.cfg.point_head:
                coords = training_points(coarse, self.cfg.points, self.cfg.oversample,
                                         self.cfg.importance, generator)
                out["points"] = coords
                out["point_logits"] = self.point_logits(coarse, fine, coords)
            return out
        return {"coarse": coarse, "logits": self.refine(coarse, fine, x.shape[-2:])}

    def refine(self, coarse: torch.Tensor, fine: torch.Tensor, size) -> torch.Tensor:
        """Full-resolution logits: ×2 upsampling, re-predicting the most uncertain cells."""
        logits = coarse
        if self.cfg.point_head:
            for _ in range(self.cfg.subdivision_steps):
                logits = F.interpolate(logits, scale_factor=2, mode="bilinear",
                                       align_corners=False)
                b, c, h, w = logits.shape
                idx, coords = most_uncertain_cells(logits, self.cfg.points)
                new = self.point_logits(coarse, fine, coords).to(logits.dtype)
                logits = logits.reshape(b, c, h * w).scatter(
                    2, idx.unsqueeze(1).expand(-1, c, -1), new).reshape(b, c, h, w)
        if tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=tuple(size), mode="bilinear",
                                   align_corners=False)
        return logits


class Discriminator(nn.Module):
    """Five 4 × 4 stride-2 convolutions on the softmax prediction → source-domain logit."""

    def __init__(self, num_classes: int = 2, widths: tuple[int, ...] = (64, 128, 256, 512)):
        super().__init__()
        layers: list[nn.Module] = []
        cin = num_classes
        for w in widths:
            layers += [nn.Conv2d(cin, w, 4, stride=2, padding=1),
                       nn.LeakyReLU(0.2, inplace=True)]
            cin = w
        layers.append(nn.Conv2d(cin, 1, 4, stride=2, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, probabilities: torch.Tensor) -> torch.Tensor:
        return self.net(probabilities)
