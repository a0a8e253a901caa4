"""Pre-logits features: the vector each image becomes just before the classifier (timm's
`forward_head(x, pre_logits=True)`: the pooled last Inception block), for retrieval, clustering and for finding a
mistake's nearest training images."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..errors import UserError
from .crops import normalize


@torch.inference_mode()
def embed(member, images: list[Image.Image], batch_size: int = 64) -> np.ndarray:
    """[images, features] float32, one center crop each, through a torch ensemble member."""
    model = member.model
    if not hasattr(model, "forward_features"):
        raise UserError("embeddings need the PyTorch model: give the model file or run folder, not an ONNX file")
    transform = member.transform(1)
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        crops = torch.cat([transform(img.convert("RGB")) for img in images[start:start + batch_size]])
        x = normalize(crops.to(device), member.model_cfg["mean"], member.model_cfg["std"])
        if member.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        features = model.forward_head(model.forward_features(x), pre_logits=True)
        out.append(features.flatten(1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, getattr(model, "num_features", 0)), dtype=np.float32)


def nearest(queries: np.ndarray, pool: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The `k` most similar rows of `pool` for each query by cosine similarity: (indices, similarities)."""
    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    similarity = unit(queries) @ unit(pool).T
    k = min(k, pool.shape[0])
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(similarity, order, axis=1)
