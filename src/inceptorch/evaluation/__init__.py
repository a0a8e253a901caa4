"""Evaluation and prediction: the paper's multi-crop protocols, ensembles, accuracy and confusion matrices."""
from .._lazy import lazy_exports

_EXPORTS = {
    ".crops": ("Crop", "CropTransform", "crop_boxes", "crop_tensor", "one_crop", "paper_144_crops", "render_crops",
               "ten_crops"),
    ".ensemble": ("Member", "ensemble_probabilities", "load_members"),
    ".evaluate": ("EvalResult", "evaluate", "load_eval_data", "save_confusion_png"),
    ".predict": ("Prediction", "collect_images", "predict"),
}
lazy_exports(__name__, _EXPORTS)
__all__ = [name for names in _EXPORTS.values() for name in names]
