"""The two input normalisations of the family, as (R, G, B) mean and standard deviation of [0, 1] pixels."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)  # TF-slim / Keras convention: pixels scaled to [-1, 1]
INCEPTION_STD = (0.5, 0.5, 0.5)
