"""Array images for the fake Earth Engine server (what the model as Earth Engine algebra
uses, :mod:`gbaugs.mapping.earthengine`): ``Array``, ``Image.toArray`` /
``arrayTranspose`` / ``arrayRepeat`` / ``arrayReduce`` / ``matrixMultiply`` /
``arrayGet``, evaluated with numpy on the world grid (:data:`ARRAY_ALGORITHMS`)."""

from __future__ import annotations

import numpy as np

from gbaugs.testing.ee_images import Image, Reducer, _as_image, array
from gbaugs.testing.ee_values import FakeServerError


# Array images: a band's values have shape (rows, cols, *array shape), (1, 1, *shape) for
# an array constant; its mask stays per pixel.
def _array_dims(v: np.ndarray) -> int:
    return max(v.ndim - 2, 0)


def to_array(image: Image, axis: int = 0) -> Image:
    """``Image.toArray``: the bands' pixels concatenated along ``axis`` (a new axis when it
    equals the bands' array dimension), masked where any band is."""
    vals = [v for v, _ in image.bands.values()]
    dims = {_array_dims(v) if v.ndim else 0 for v in vals}
    if len(dims) != 1:
        raise FakeServerError("Image.toArray: bands of different array dimensions")
    dim = dims.pop()
    if not 0 <= axis <= dim:
        raise FakeServerError(f"Image.toArray: axis {axis} for {dim}-D pixels")
    full = np.broadcast_arrays(*[np.broadcast_to(v, (*_grid_shape(vals), *v.shape[2:]))
                                 for v in vals])
    join = np.stack if axis == dim else np.concatenate  # a new axis, or an existing one
    out = join(full, axis=2 + axis)
    mask = np.logical_and.reduce(np.broadcast_arrays(*[m for _, m in image.bands.values()]))
    return Image({"array": (out, mask)}, dict(image.properties), image.footprint)


def _grid_shape(vals: list[np.ndarray]) -> tuple[int, int]:
    for v in vals:
        if v.ndim >= 2 and v.shape[:2] != (1, 1):
            return v.shape[:2]
    return (1, 1)


def _one_band(image: Image, name: str) -> tuple[str, np.ndarray, np.ndarray]:
    if len(image.bands) != 1:
        raise FakeServerError(f"{name}: the fake handles one-band array images only")
    n, (v, m) = next(iter(image.bands.items()))
    if v.ndim < 3:
        raise FakeServerError(f"{name}: band '{n}' is not an array band")
    return n, v, m


def array_transpose(input: Image, axis1: int = 0, axis2: int = 1) -> Image:
    n, v, m = _one_band(input, "Image.arrayTranspose")
    return Image({n: (np.swapaxes(v, 2 + axis1, 2 + axis2), m)}, dict(input.properties),
                 input.footprint)


def array_repeat(input: Image, axis: int, copies) -> Image:
    n, v, m = _one_band(input, "Image.arrayRepeat")
    k = int(next(iter(_as_image(copies).bands.values()))[0])
    return Image({n: (np.concatenate([v] * k, axis=2 + axis), m)}, dict(input.properties),
                 input.footprint)


def array_reduce(input: Image, reducer: Reducer, axes, fieldAxis=None) -> Image:
    n, v, m = _one_band(input, "Image.arrayReduce")
    if fieldAxis is not None or reducer.kind not in ("sum", "mean"):
        raise FakeServerError("Image.arrayReduce: the fake reduces arrays by sum or mean")
    fn = np.sum if reducer.kind == "sum" else np.mean
    return Image({n: (fn(v, axis=tuple(2 + a for a in axes), keepdims=True), m)},
                 dict(input.properties), input.footprint)


def matrix_multiply(image1: Image, image2: Image) -> Image:
    na, a, ma = _one_band(image1, "Image.matrixMultiply")
    _, b, mb = _one_band(image2, "Image.matrixMultiply")
    if a.ndim != 4 or b.ndim != 4 or a.shape[3] != b.shape[2]:
        raise FakeServerError(f"Image.matrixMultiply: shapes {a.shape[2:]} and "
                              f"{b.shape[2:]} do not multiply")
    return Image({na: (np.matmul(a, b), ma & mb)}, dict(image1.properties),
                 image1.footprint)


def array_get(image: Image, position) -> Image:
    n, v, m = _one_band(image, "Image.arrayGet")
    pos = tuple(int(p) for p, _ in _as_image(position).bands.values())
    if len(pos) != v.ndim - 2:
        raise FakeServerError(f"Image.arrayGet: position {list(pos)} for "
                              f"{v.ndim - 2}-D pixels")
    return Image({n: (v[(slice(None), slice(None), *pos)], m)}, dict(image.properties),
                 image.footprint)


ARRAY_ALGORITHMS = {
    "Array": array,
    "Image.toArray": to_array,
    "Image.arrayTranspose": array_transpose,
    "Image.arrayRepeat": array_repeat,
    "Image.arrayReduce": array_reduce,
    "Image.matrixMultiply": matrix_multiply,
    "Image.arrayGet": array_get,
}
"""Array-image algorithms the fake evaluates."""
