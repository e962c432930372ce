"""Maps from a trained model (the ``map`` and ``postprocess`` stages).

- :mod:`gbaugs.mapping.predict` — block-wise prediction of a feature stack, labels equal to
  scikit-learn's (in process or on Dask);
- :mod:`gbaugs.mapping.earthengine` — the model as Earth Engine array algebra (extra
  ``gee``; imported on use);
- :mod:`gbaugs.mapping.postprocess` — majority filter, opening/closing, small patches;
- :mod:`gbaugs.mapping.agreement` — the cleaned map against its own labels, per category;
- :mod:`gbaugs.mapping.stage` — both stages.
"""

from gbaugs.mapping.postprocess import postprocess_array, postprocess_raster
from gbaugs.mapping.predict import decision_values, predict_stack

__all__ = [
    "decision_values",
    "postprocess_array",
    "postprocess_raster",
    "predict_stack",
]
