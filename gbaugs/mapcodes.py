"""The codes, names and colours of a UGS map — one place for mapping, post-processing,
products, analysis, the report and UGSNet.

A map is a single-band ``uint8`` raster: ``0`` non-UGS, ``1`` UGS, ``255`` no data
(outside the city or the imagery, water, clouds in every scene).
"""

from __future__ import annotations

NON_UGS = 0
UGS = 1
NODATA = 255
CLASS_NAMES: dict[int, str] = {NON_UGS: "non-UGS", UGS: "UGS"}
COLOURS: dict[int, tuple[int, int, int, int]] = {
    NON_UGS: (230, 228, 210, 255),  # light beige
    UGS: (34, 139, 34, 255),  # forest green
    NODATA: (0, 0, 0, 0),  # transparent
}
"""RGBA colour table of the published maps (and of every figure that shows a map)."""
UGS_HEX = "#{:02x}{:02x}{:02x}".format(*COLOURS[UGS][:3])
