"""inceptorch: the GoogLeNet / Inception family as fast, trustworthy PyTorch software."""
from .errors import UserError
from .export.folder import from_pretrained, save_pretrained
from .fast import compile_for_inference, optimize
from .losses import aux_loss
from .models import ModelCfg, ModelOutput, create_model, get_model_cfg, list_models

__version__ = "0.1.0"
__all__ = ["ModelCfg", "ModelOutput", "UserError", "aux_loss", "compile_for_inference", "create_model",
           "from_pretrained", "get_model_cfg", "list_models", "optimize", "save_pretrained"]
