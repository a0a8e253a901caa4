"""Speed (issue 5): the optimized inference path, the compiled training step and the benchmark helpers."""
from .compiled import compile_for_inference
from .optimize import fold_all_batchnorms, fold_batchnorm, merge_all_branches, merge_branches, optimize

__all__ = ["compile_for_inference", "fold_all_batchnorms", "fold_batchnorm", "merge_all_branches", "merge_branches",
           "optimize"]
