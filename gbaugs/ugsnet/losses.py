"""UGSNet losses (paper eqs. 1-7).

Labels are long tensors (B, H, W) with 1 = UGS, 0 = non-UGS and :data:`IGNORE` for pixels
without a label (e.g. the corners a rotation brings in); ignored pixels count nowhere.

- ``L_Dice = 1 − 2|X∩Y| / (|X| + |Y|)`` (eq. 1), soft: ``X`` is the UGS probability of the
  coarse prediction resized to the label grid, ``Y`` the UGS mask (+1 smoothing in both);
- ``L_CE`` (eq. 2): cross-entropy of the point head's logits against the labels at the
  points (nearest label pixel), averaged over the points (the paper sums; the mean only
  rescales the loss and keeps it independent of N);
- ``L_ugs = L_Dice + L_CE`` (eq. 3);
- ``L_D`` (eq. 5): binary cross-entropy of the discriminator's per-cell logits, source = 1,
  target = 0; ``L_adv = −log D(P_t)`` (eq. 6), i.e. the same with the target labelled 1;
- ``L_G = L_ugs + λ·L_adv`` (eq. 7; λ = 1 in the paper).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gbaugs.ugsnet.points import point_sample

IGNORE = -1


def dice_loss(coarse: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = F.interpolate(coarse.float(), size=labels.shape[-2:], mode="bilinear",
                           align_corners=False)
    p = torch.softmax(logits, dim=1)[:, 1]
    valid = (labels != IGNORE).float()
    y = (labels == 1).float()
    inter = (p * y * valid).sum()
    return 1 - (2 * inter + 1) / ((p * valid).sum() + (y * valid).sum() + 1)


def point_ce_loss(point_logits: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor
                  ) -> torch.Tensor:
    target = point_sample(labels.unsqueeze(1).float(), coords, mode="nearest")
    target = target.squeeze(1).round().long()  # (B, N)
    return F.cross_entropy(point_logits.float(), target, ignore_index=IGNORE)


def ugs_loss(out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """``L_ugs`` of a training forward pass (Dice alone when the point head is off)."""
    loss = dice_loss(out["coarse"], labels)
    if "point_logits" in out:
        loss = loss + point_ce_loss(out["point_logits"], out["points"], labels)
    return loss


def discriminator_loss(d_source: torch.Tensor, d_target: torch.Tensor) -> torch.Tensor:
    """Eq. 5 over the source (label 1) and target (label 0) predictions."""
    return (F.binary_cross_entropy_with_logits(d_source, torch.ones_like(d_source))
            + F.binary_cross_entropy_with_logits(d_target, torch.zeros_like(d_target))) / 2


def adversarial_loss(d_target: torch.Tensor) -> torch.Tensor:
    """Eq. 6: the target prediction should pass for source."""
    return F.binary_cross_entropy_with_logits(d_target, torch.ones_like(d_target))
