"""The values evaluation's options take, as plain data: the command line offers them without importing torch."""

PROTOCOLS = (1, 10, 144)  # crops per image: center; corners + center, mirrored; the GoogLeNet paper's 144 (section 7)
SPLITS = ("auto", "val", "train", "all")  # which images of a data source are evaluated
RUNTIMES = ("torch", "onnxruntime")  # what runs a checkpoint: PyTorch, or ONNX Runtime on an exported .onnx file
