"""Comparison with reference land-cover products (paper 4.1, Tables 6–7).

``tables/reference_crosswalks.csv`` maps the classes of ESA WorldCover, Dynamic World
(label band), Esri LULC, CLCD, GlobeLand30 and GLC_FCS30 to UGS (1), non-UGS (0) or no data
(255): forest, shrubland and grassland → UGS; cropland, built, water, bare → non-UGS; the
ambiguous classes (wetlands, mangroves, sparse vegetation, orchards) are decided and
explained row by row in the table.

A reference raster (any local GeoTIFF; with the gee backend, an Earth Engine export) is
brought onto the map's grid — nearest neighbour when its pixels are as large as the map's
or larger (each 10 m pixel takes the class under its centre), mode when they are smaller
— then reclassified. Reported over the pixels valid in both: UGS area of each product
(ha), pixel agreement (overall accuracy of the map against the reference), Cohen's kappa
and the confusion matrix (rows: map non-UGS/UGS; columns: reference), and the count of
codes missing from the crosswalk (treated as no data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.errors import InputDataError
from gbaugs.io.maps import read_class_map
from gbaugs.resources import crosswalks


def compare_with_reference(map_path: Path, reference: Path, product: str,
                           table: dict[str, dict[int, int]] | None = None) -> dict[str, Any]:
    """Compare a UGS map (1/0/255, read by :func:`gbaugs.io.maps.read_class_map`) with a
    reference land-cover raster of ``product``."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from gbaugs.train.validation import metrics

    table = table or crosswalks()
    if product not in table:
        raise InputDataError(f"unknown reference product {product!r}",
                             hint=f"products: {', '.join(sorted(table))}")
    lut = table[product]
    ugs_map, nd, meta = read_class_map(map_path, binary=True)
    ugs_map = np.where(ugs_map == nd, 255, ugs_map).astype(np.uint8)
    transform, crs = meta["transform"], meta["crs"]
    if crs is None:
        raise InputDataError("the map has no CRS", where=map_path)
    pixel_area = abs(transform.a * transform.e)
    try:
        ref_src = rasterio.open(reference)
    except rasterio.RasterioIOError as exc:
        raise InputDataError(f"cannot read the reference ({exc})", where=reference
                             ) from None
    with ref_src:
        if ref_src.crs is None:
            raise InputDataError("the reference raster has no CRS", where=reference)
        coarser = abs(ref_src.res[0]) >= abs(transform.a) * 0.999 or \
            not ref_src.crs.is_projected
        resampling = Resampling.nearest if coarser else Resampling.mode
        with WarpedVRT(ref_src, crs=crs, transform=transform, width=ugs_map.shape[1],
                       height=ugs_map.shape[0], resampling=resampling) as vrt:
            codes = vrt.read(1)
            fill = vrt.nodata if vrt.nodata is not None else 0
    if not (codes != fill).any():
        raise InputDataError("the map and the reference share no valid pixel: the reference "
                             "does not cover the map", where=reference,
                             hint="check that they cover the same city (and their CRS)")
    if not np.isin(codes, [c for c, v in lut.items() if v != 255]).any():
        found = np.unique(codes)
        raise InputDataError(
            f"none of the reference's values is a {product} class (found "
            f"{', '.join(map(str, found[:8].tolist()))}{' …' if len(found) > 8 else ''}; "
            f"{product} has {', '.join(map(str, sorted(lut)))})", where=reference,
            hint="check --product, and that the reference is a land-cover product, not a "
                 "map, and that it covers the map")
    lookup = np.full(int(max(codes.max(), max(lut))) + 1, 255, dtype=np.uint8)
    for code, v in lut.items():
        lookup[code] = v
    known = np.isin(codes, list(lut))
    ref = lookup[codes]
    both = (ugs_map != 255) & (ref != 255)
    if not both.any():
        raise InputDataError("the map and the reference share no valid pixel",
                             where=reference, hint="check that they cover the same city")
    m_ = metrics(ref[both].astype(int), ugs_map[both].astype(int))
    return {"product": product, "resampling": resampling.name,
            "compared_pixels": int(both.sum()),
            "unknown_code_pixels": int((~known & (ugs_map != 255)).sum()),
            "map_ugs_ha": float((ugs_map[both] == 1).sum() * pixel_area / 1e4),
            "reference_ugs_ha": float((ref[both] == 1).sum() * pixel_area / 1e4),
            "agreement": m_["oa"], "kappa": m_["kappa"],
            "confusion_map_vs_reference": np.array(m_["confusion"]).T.tolist()}
