"""Several views in one fit: Dice with the short-axis stack alone vs with long-axis views added.

For each seed: a synthetic oblique case (about 75,000 nodes, 10 mm spacing, 8 mm slices, noise
0.03) with three one-slice long-axis views; the whole patient (prepare + train + predict, 20 MC
samples) with our defaults on short axis only, and on short axis + the long-axis views.

    .venv/bin/python benchmarks/views.py [--seeds 0 1 2] [--views 3]
    .venv/bin/python benchmarks/views.py --intensity   # LGE intensities (default mixture) on every stack
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvista as pv

from pycemrg_scar_reconstruction import MeshConfig, PrepareConfig, StackConfig, SynthConfig, TrainConfig, prepare, synth
from pycemrg_scar_reconstruction.config import RuntimeConfig
from pycemrg_scar_reconstruction.metrics import dice, mae
from pycemrg_scar_reconstruction.prediction import predict_nodes
from pycemrg_scar_reconstruction.training import fit

QUIET = RuntimeConfig(quiet=True)  # no progress bar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--intensity", action="store_true", help="LGE intensities on every stack (default mixture)")
    args = parser.parse_args()
    target = "intensity" if args.intensity else "probability"
    print(
        f"settings: seeds={args.seeds} long-axis views={args.views} nodes~{args.nodes} spacing=10 mm thickness=8 mm "
        f"target={target}"
    )
    print("| seed | SA Dice | SA MAE | SA s | SA+LA Dice | SA+LA MAE | SA+LA s |\n|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            config = SynthConfig(seed=seed, n_nodes=args.nodes, long_axis_views=args.views, intensity=args.intensity)
            paths = synth(config, Path(tmp) / str(seed))
            truth = np.asarray(pv.read(paths["mesh"]).point_data["scar_truth"])
            sa = StackConfig(path=paths["image"], mask=paths["mask"], slice_thickness=8.0, target=target)
            la = [
                StackConfig(path=paths[f"image_la{v}"], mask=paths[f"mask_la{v}"], slice_thickness=8.0, target=target)
                for v in range(1, args.views + 1)
            ]
            row = []
            for stacks in ([sa], [sa, *la]):
                t0 = time.perf_counter()
                data = prepare(PrepareConfig(mesh=MeshConfig(path=paths["mesh"]), stacks=stacks))
                prob = predict_nodes(fit(data, TrainConfig(), QUIET), data.points, 20, 0).probability
                row += [dice(prob, truth), mae(prob, truth), time.perf_counter() - t0]
            print(
                f"| {seed} | {row[0]:.3f} | {row[1]:.4f} | {row[2]:.0f} | {row[3]:.3f} | {row[4]:.4f} | {row[5]:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
