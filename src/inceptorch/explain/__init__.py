"""Why a model answers what it answers: Grad-CAM heat maps (`gradcam.py`)."""
