"""PointRend-style point selection and sampling (Kirillov et al. 2020; paper Sect. 3.1.2).

Point coordinates are ``(x, y)`` in ``[0, 1]`` relative to the image (pixel centres of an
``H × W`` grid at ``((j + 0.5)/W, (i + 0.5)/H)``), shape ``(B, N, 2)``. Uncertainty of a
two-class prediction is minus the gap between its two logits (largest when they tie).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def point_sample(features: torch.Tensor, coords: torch.Tensor, mode: str = "bilinear"
                 ) -> torch.Tensor:
    """Values of ``features`` (B, C, H, W) at ``coords`` (B, N, 2) → (B, C, N)."""
    grid = (2.0 * coords - 1.0).unsqueeze(2).to(features.dtype)  # (B, N, 1, 2)
    out = F.grid_sample(features, grid, mode=mode, padding_mode="border", align_corners=False)
    return out.squeeze(3)


def uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Minus the gap between the two largest class logits, (B, C, ...) → (B, ...)."""
    top2 = torch.topk(logits, 2, dim=1).values
    return -(top2[:, 0] - top2[:, 1])


def training_points(coarse: torch.Tensor, n: int, k: int, beta: float,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """The paper's training sampler: draw ``k·n`` random candidates, keep the ``β·n`` most
    uncertain and ``n − β·n`` random ones among the remaining candidates."""
    b = coarse.shape[0]
    device = coarse.device
    cand = torch.rand(b, k * n, 2, generator=generator, device=device)
    with torch.no_grad():
        unc = uncertainty(point_sample(coarse.detach().float(), cand))  # (B, kN)
    n_imp = round(beta * n)
    order = torch.argsort(unc, dim=1, descending=True)
    important = order[:, :n_imp]
    rest = order[:, n_imp:]
    pick = torch.argsort(torch.rand(rest.shape, generator=generator, device=device),
                         dim=1)[:, :n - n_imp]
    chosen = torch.cat([important, torch.gather(rest, 1, pick)], dim=1)
    return torch.gather(cand, 1, chosen.unsqueeze(-1).expand(-1, -1, 2))


def most_uncertain_cells(logits: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference: flat indices and centre coordinates of the ``n`` most uncertain cells
    of ``logits`` (B, C, H, W)."""
    b, _, h, w = logits.shape
    n = min(n, h * w)
    idx = torch.topk(uncertainty(logits).reshape(b, -1), n, dim=1).indices
    x = ((idx % w).to(torch.float32) + 0.5) / w
    y = (torch.div(idx, w, rounding_mode="floor").to(torch.float32) + 0.5) / h
    return idx, torch.stack([x, y], dim=2)
