"""Deployment: ONNX (+ ONNX Runtime), torch.export programs, portable saved-model folders and int8 quantization."""
from .folder import from_pretrained, save_pretrained
from .onnx import export_onnx, onnx_parity
from .onnx_runtime import OnnxClassifier
from .preprocess import eval_transform, preprocessing
from .program import export_program, load_program
from .quantize import load_quantized, quantize_int8, save_quantized, top1

__all__ = ["OnnxClassifier", "eval_transform", "export_onnx", "export_program", "from_pretrained", "load_program",
           "load_quantized", "onnx_parity", "preprocessing", "quantize_int8", "save_pretrained", "save_quantized",
           "top1"]
