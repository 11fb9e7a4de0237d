"""Datasets: named sets (downloaded or found locally), image folders and .npz files, as one ``Dataset`` type.

    from genlab.data import load_dataset
    train = load_dataset("fashion-mnist", split="train")   # uint8 N×1×28×28 + labels + class names
    faces = load_dataset("path/to/folder", image_size=64)   # class sub-folders become labels

Where files are looked for and how downloads work (``GENLAB_DATA``, ``GENLAB_MIRROR``, the
user cache): see ``genlab.data.sources``. Label-scarce subsets (exactly k images a class) are in
``genlab.data.subsets``; real and synthetic images mixed for any PyTorch loop in ``genlab.data.mixing``.
"""
from genlab.data.dataset import Dataset
from genlab.data.idx import read_idx, write_idx
from genlab.data.mixing import MixedDataset
from genlab.data.registry import dataset_info, list_datasets, load_dataset
from genlab.data.sources import download
from genlab.data.subsets import k_per_class, split_per_class

__all__ = ["Dataset", "MixedDataset", "dataset_info", "download", "k_per_class", "list_datasets", "load_dataset", "read_idx",
           "split_per_class", "write_idx"]
