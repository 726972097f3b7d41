"""Datasets for training and evaluation (ROS-free, torch-free): RAVDESS, IEMOCAP and the
project's synthetic set as labelled :class:`Clip` lists with fixed folds, split by group
(actor / session), never by clip."""
from .base import Clip, Dataset, DatasetError, Fold, Split, read_clip
from .iemocap import IemocapDataset
from .ravdess import RavdessDataset, RavdessName, parse_ravdess_name
from .registry import DATASETS, open_dataset
from .synthetic import SyntheticDataset

__all__ = ["Clip", "Dataset", "DatasetError", "Fold", "Split", "read_clip", "IemocapDataset",
           "RavdessDataset", "RavdessName", "parse_ravdess_name", "DATASETS", "open_dataset",
           "SyntheticDataset"]
