"""Evaluation and prediction: the paper's multi-crop protocols, ensembles, accuracy and confusion matrices."""
from .crops import Crop, CropTransform, crop_boxes, crop_tensor, one_crop, paper_144_crops, render_crops, ten_crops
from .ensemble import Member, ensemble_probabilities, load_members
from .evaluate import EvalResult, evaluate, load_eval_data, save_confusion_png
from .predict import Prediction, collect_images, predict

__all__ = ["Crop", "CropTransform", "EvalResult", "Member", "Prediction", "collect_images", "crop_boxes",
           "crop_tensor", "ensemble_probabilities", "evaluate", "load_eval_data", "load_members", "one_crop",
           "paper_144_crops", "predict", "render_crops", "save_confusion_png", "ten_crops"]
