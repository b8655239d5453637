"""Sample images for notebooks and smoke runs, with a fallback that always works.

With ``ESRGAN_LAB_DATA`` set, samples come from the benchmark folders (e.g.
``Set14/baboon.png``). Without it, they come from the images that scikit-image ships,
written once as PNG files to a cache folder so that file-based code paths (the vendor's
``cv2.imread``) can be shown on them too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..settings import data_dir

#: scikit-image sample images used as the fallback, in order of preference.
SKIMAGE_SAMPLES: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "immunohistochemistry",
)


def skimage_sample(name: str) -> np.ndarray:
    """A scikit-image sample as an HWC uint8 **BGR** array (the cv2 convention)."""
    from skimage import data as skdata

    rgb = getattr(skdata, name)()
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    return np.ascontiguousarray(rgb[..., :3][..., ::-1])


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "esrgan-lab" / "samples"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sample_image_file(preferred: str = "Set14/baboon.png", fallback: str = "astronaut") -> Path:
    """Path of a sample image file: ``$ESRGAN_LAB_DATA/<preferred>`` or a skimage PNG.

    Args:
        preferred: Path relative to the dataset folder.
        fallback: scikit-image sample name used when the dataset is not available.
    """
    root = data_dir()
    if root is not None and (root / preferred).is_file():
        return root / preferred
    from .images import write_image

    target = _cache_dir() / f"skimage_{fallback}.png"
    if not target.is_file():
        write_image(target, skimage_sample(fallback))
    return target
