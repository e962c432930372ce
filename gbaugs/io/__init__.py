"""Files: atomic writes read back before the rename, the run folder's lock, and the one
reader of each kind of file handed to several stages (class maps, vector layers).

- :mod:`gbaugs.io.atomic` — ``atomic_path``, ``write_json``/``write_text``, hashing;
- :mod:`gbaugs.io.lock` — ``folder_lock`` (one run per folder);
- :mod:`gbaugs.io.maps` — ``read_class_map`` (integer codes; NaN = no data);
- :mod:`gbaugs.io.vector` — ``read_vector_file`` (CRS and features required);
- :mod:`gbaugs.io.cog` — categorical Cloud-Optimized GeoTIFFs with a colour table;
- :mod:`gbaugs.io.damage` — ``reading`` (GDAL read failures as one clear error);
- :mod:`gbaugs.io.outputs` — ``check_output`` (never over an input or an unasked file);
- :mod:`gbaugs.io.rasters` — ``raster_files`` (the rasters an imagery path names).
"""

from gbaugs.io.atomic import atomic_path, sha256_file, write_json, write_text
from gbaugs.io.cog import write_categorical_cog
from gbaugs.io.lock import folder_lock
from gbaugs.io.maps import read_class_map
from gbaugs.io.vector import read_vector_file

__all__ = [
    "atomic_path",
    "folder_lock",
    "read_class_map",
    "read_vector_file",
    "sha256_file",
    "write_categorical_cog",
    "write_json",
    "write_text",
]
