"""Datasets, image decoding and transform presets."""
