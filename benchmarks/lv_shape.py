"""How round is the LV? The real cases' myocardium labels against the synthetic masks, smooth and
irregular (``synth --lv-irregularity``).

Each short-axis slice whose mask encloses a cavity is measured along 36 rays from the cavity's
centre: the endocardial and epicardial radius and the wall thickness at every 10 degrees, then the
relative amplitude (amplitude over mean) of their harmonics 1-4 about the long axis. Printed: the
median over a case's slices, for every real case found and for synthetic intensity cases (the
segmentation-like mask, pixels of the real case's 2.125 mm) at each irregularity. A smooth shell
gives harmonics near the pixels' own noise (about 0.01 of the outlines, 0.02-0.05 of the wall);
the real case's set the amplitudes that ``lv_irregularity`` 1 draws (``anatomy.REAL_WALL_HARMONICS``).

    .venv/bin/python benchmarks/lv_shape.py [--seeds 0 1 2 3 4] [--irregularity 0 1] [--data DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from real import REAL
from scipy import ndimage

from pycemrg_scar_reconstruction import SynthConfig, synth

RAYS = 36
HARMONICS = 4


def relative_harmonics(values: np.ndarray) -> np.ndarray:
    """(HARMONICS,) amplitude over mean of harmonics 1.. of values sampled at equal angles."""
    spectrum = np.fft.rfft(values - values.mean()) / len(values) * 2
    return np.abs(spectrum[1 : HARMONICS + 1]) / values.mean()


def slice_shapes(mask: np.ndarray, pixel_mm: float) -> np.ndarray:
    """(S, 2 + 3 x HARMONICS) per slice with a cavity: endocardial radius mm, wall mm, then the
    relative harmonics of the endocardial radius, the epicardial radius and the wall thickness."""
    rows = []
    angles = np.linspace(0, 2 * np.pi, RAYS, endpoint=False)
    steps = np.arange(0, 60 / pixel_mm, 0.05)  # along a ray, pixels
    for k in range(mask.shape[2]):  # a dozen slices
        ring = mask[:, :, k]
        cavity = ndimage.binary_fill_holes(ring) & ~ring
        if ring.sum() < 30 or cavity.sum() < 5:
            continue
        centre = np.array(ndimage.center_of_mass(cavity))
        pts = centre + steps[None, :, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)[:, None, :]
        idx = np.round(pts).astype(int)
        ok = (idx >= 0).all(axis=2) & (idx[..., 0] < ring.shape[0]) & (idx[..., 1] < ring.shape[1])
        hit = np.zeros(ok.shape, bool)
        hit[ok] = ring[idx[ok][:, 0], idx[ok][:, 1]]
        if not hit.any(axis=1).all():
            continue
        endo = steps[np.argmax(hit, axis=1)] * pixel_mm
        epi = steps[hit.shape[1] - 1 - np.argmax(hit[:, ::-1], axis=1)] * pixel_mm
        wall = epi - endo
        harmonics = [relative_harmonics(x) for x in (endo, epi, wall)]
        rows.append(np.concatenate([[endo.mean(), wall.mean()], *harmonics]))
    return np.array(rows)


def line(name: str, mask: np.ndarray, pixel_mm: float) -> str:
    shapes = slice_shapes(mask, pixel_mm)
    med = np.median(shapes, axis=0)
    parts = [" ".join(f"{v:.3f}" for v in med[2 + i * HARMONICS : 2 + (i + 1) * HARMONICS]) for i in range(3)]
    return f"| {name} | {len(shapes)} | {med[0]:.1f} / {med[1]:.1f} | " + " | ".join(parts) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--irregularity", type=float, nargs="*", default=[0.0, 1.0])
    parser.add_argument("--data", type=Path, default=REAL, help=f"folder of the real cases (default: {REAL})")
    args = parser.parse_args()
    print("| case | slices | endocardial radius / wall mm | endocardium h1-h4 | epicardium h1-h4 | wall h1-h4 |")
    print("|---|---|---|---|---|---|")
    for case in sorted(p for p in args.data.glob("*") if (p / "sa_labels.nii.gz").exists()):
        image = nib.load(case / "sa_labels.nii.gz")
        print(line(f"real {case.name}", np.asarray(image.dataobj) > 0, float(image.header.get_zooms()[0])), flush=True)
    for irregularity in args.irregularity:
        for seed in args.seeds:
            config = SynthConfig(seed=seed, n_nodes=20000, intensity=True, pixel_spacing=2.125, lv_irregularity=irregularity)
            with tempfile.TemporaryDirectory() as tmp:
                files = synth(config, Path(tmp) / "case")
                mask = np.asarray(nib.load(files["mask"]).dataobj) > 0.5
            print(line(f"synthetic seed {seed}, irregularity {irregularity:g}", mask, config.pixel_spacing), flush=True)


if __name__ == "__main__":
    main()
