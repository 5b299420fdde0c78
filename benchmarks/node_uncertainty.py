"""Does the recalibrated uncertainty still say where the 3D reconstruction is wrong?

The recalibration (:mod:`calibration`) is fitted and checked on held-out *pixels*; a modeller
looks at ``scar_uncertainty`` on the mesh *nodes*. On the 18 cases of ``calibration.py`` the model
is trained with the defaults, cross-validated over every slice (as ``run --calibrate`` does) and
predicted with 20 MC passes. Against the 3D truth, for the MC spread as it is and for the written
(recalibrated) uncertainty: Spearman with |probability - truth| over all nodes, and the AUC of the
uncertainty for the nodes on the wrong side of 0.5 (:func:`metrics.truth_report`).

    .venv/bin/python benchmarks/node_uncertainty.py [--nodes 40000] [--seeds ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from _cases import synthetic_data, varied_case
from calibration import ALL_CASES

from pycemrg_scar_reconstruction import RuntimeConfig, TrainConfig, train
from pycemrg_scar_reconstruction.calibration import calibrated_uncertainty
from pycemrg_scar_reconstruction.folds import fit_residual_sd
from pycemrg_scar_reconstruction.heldout import crossval
from pycemrg_scar_reconstruction.metrics import truth_report
from pycemrg_scar_reconstruction.prediction import predict_nodes

QUIET = RuntimeConfig(quiet=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40_000)
    parser.add_argument("--seeds", type=int, nargs="+", help="only the cases of these seeds")
    args = parser.parse_args()
    print(f"nodes~{args.nodes}; load {os.getloadavg()[0]:.2f}")
    print("| seed | shift | kind | BiV | Spearman: spread / written | AUC misclassified: spread / written |")
    print("|---|---|---|---|---|---|")
    rows = [row for row in ALL_CASES if args.seeds is None or row[0] in args.seeds]
    figures = []
    config = TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            data, truth, _ = synthetic_data(varied_case(*row[:6], args.nodes, row[6]), Path(tmp) / str(row[0]))
            fitted = train(data, config, runtime=QUIET)
            cal = crossval(data, config, QUIET, mc_samples=20)["calibration"]
            pred = predict_nodes(fitted, data.points, 20, 0)
            floor = fit_residual_sd(fitted, data, 20, 0)  # as run --calibrate stores it
            written = calibrated_uncertainty(pred.probability, pred.uncertainty, floor, cal["border"], cal["factors"])
            raw = truth_report(pred.probability, truth, pred.uncertainty)
            new = truth_report(pred.probability, truth, written)
            keys = ("uncertainty_error_spearman", "uncertainty_misclassified_auc")
            values = [np.nan if r[k] is None else r[k] for k in keys for r in (raw, new)]  # AUC None: none wrong
            figures.append(values)
            print(
                f"| {row[0]} | {row[3]:g} | {'intensity' if row[4] else 'probability'} | {'yes' if row[6] else 'no'} | "
                f"{values[0]:.3f} / {values[1]:.3f} | {values[2]:.3f} / {values[3]:.3f} |",
                flush=True,
            )
    v = np.asarray(figures, np.float64)
    for i, name in ((0, "Spearman, spread"), (1, "Spearman, written"), (2, "AUC, spread"), (3, "AUC, written")):
        print(f"{name}: {np.nanmin(v[:, i]):.3f}-{np.nanmax(v[:, i]):.3f}, median {np.nanmedian(v[:, i]):.3f}")
    print(f"AUC higher written than spread on {int(np.sum(v[:, 3] > v[:, 2]))} of {len(v)} cases")


if __name__ == "__main__":
    main()
