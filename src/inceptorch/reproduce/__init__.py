"""Reproducing the articles' comparisons: experiment specs, a runner over seeds, and the tables and plots."""
from .experiments import EXPERIMENTS, Experiment, Variant, experiment_names, get_experiment

__all__ = ["EXPERIMENTS", "Experiment", "Variant", "experiment_names", "get_experiment"]
