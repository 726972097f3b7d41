"""Dataset names -> classes, and ``open_dataset``."""
from __future__ import annotations

import inspect
import os
from typing import Any, Union

from .base import Dataset, DatasetError
from .iemocap import IemocapDataset
from .ravdess import RavdessDataset
from .synthetic import SyntheticDataset

DATASETS: dict[str, type[Dataset]] = {
    "ravdess": RavdessDataset,
    "iemocap": IemocapDataset,
    "synthetic": SyntheticDataset,
}


def open_dataset(name: str, root: Union[str, os.PathLike], **options: Any) -> Dataset:
    """The dataset ``name`` (ravdess, iemocap, synthetic) under ``root`` with its options
    (see each class); DatasetError for an unknown name or option."""
    cls = DATASETS.get(str(name).lower())
    if cls is None:
        raise DatasetError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in options if k not in params or k in ("self", "root"))
    if unknown:
        allowed = sorted(k for k in params if k not in ("self", "root"))
        raise DatasetError(f"{name}: unknown options {unknown}; options: {allowed}")
    return cls(root, **options)
