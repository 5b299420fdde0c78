"""The Python API: orchestrators that read inputs, call the pure core and write outputs.

One module per step, each taking the same pydantic config objects as the CLI (:mod:`..config`):
:mod:`.synth`, :mod:`.prepare` (a pipeline of named stages), :mod:`.train`, :mod:`.predict`,
:mod:`.run` (``reconstruct``: the whole patient), :mod:`.validate`, :mod:`.crossval`,
:mod:`.report`, :mod:`.baseline` and :mod:`.transform`; what several steps share is in :mod:`._common`.
"""

from __future__ import annotations

from .baseline import baseline
from .crossval import crossval, heldout_summary
from .predict import predict
from .prepare import alignment_picture_path, prepare
from .report import report, slice_offsets_mm
from .run import output_paths, reconstruct
from .synth import synth
from .train import train
from .transform import study_to_mesh, transform
from .validate import validate

__all__ = [
    "alignment_picture_path",
    "baseline",
    "crossval",
    "heldout_summary",
    "output_paths",
    "predict",
    "prepare",
    "reconstruct",
    "report",
    "slice_offsets_mm",
    "synth",
    "study_to_mesh",
    "train",
    "transform",
    "validate",
]
