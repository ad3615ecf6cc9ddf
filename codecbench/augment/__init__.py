"""Codec augmentation for any training loop, numpy in and out.

- :class:`CodecAugment` (:mod:`.transform`): an audiomentations-compatible transform that codes a clip under a
  drawn condition (18 codec families, aligned, same length and rate; cached by content if asked).
- :class:`CodecAugmentedDataset` (:mod:`.pool`): a fixed training set with a condition drawn per clip and epoch,
  served from the cache (coded once per pair across epochs), with PyTorch, tf.data and Keras adaptors.
- :class:`ConditionDraw` (:mod:`.draw`): what both draw from, validated at construction.
"""
from codecbench.augment.draw import ConditionDraw
from codecbench.augment.pool import CodecAugmentedDataset
from codecbench.augment.transform import CodecAugment

__all__ = ["CodecAugment", "CodecAugmentedDataset", "ConditionDraw"]
