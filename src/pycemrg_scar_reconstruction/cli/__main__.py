"""``python -m pycemrg_scar_reconstruction.cli``: the same as ``scar-reconstruct``."""

import sys

from . import main

sys.exit(main())
