"""Speed: optimized inference (BN folding, branch merging, CPU kernels), its compiled form, the training step."""
from .compiled import compile_for_inference
from .optimize import fold_all_batchnorms, fold_batchnorm, merge_all_branches, merge_branches, optimize

__all__ = ["compile_for_inference", "fold_all_batchnorms", "fold_batchnorm", "merge_all_branches", "merge_branches",
           "optimize"]
