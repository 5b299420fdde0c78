"""Per-patient 3D myocardial scar reconstruction from 2D LGE-CMR slices onto ventricular meshes.

The Python API (the CLI ``scar-reconstruct`` is a thin layer over it)::

    from pycemrg_scar_reconstruction import prepare, train, predict, reconstruct
"""

__version__ = "0.1.0"

from .api import predict, prepare, reconstruct, synth, train  # noqa: E402
from .config import (  # noqa: E402
    MeshConfig,
    ModelConfig,
    PredictConfig,
    PrepareConfig,
    StackConfig,
    SynthConfig,
    TrainConfig,
    train_config,
)
from .errors import InputError  # noqa: E402

__all__ = [
    "prepare", "train", "predict", "reconstruct", "synth", "MeshConfig", "ModelConfig", "PredictConfig",
    "PrepareConfig", "StackConfig", "SynthConfig", "TrainConfig", "train_config", "InputError", "__version__",
]
