"""Calibration of the uncertainty on held-out pixels: the check, and the recalibration a model stores.

A held-out pixel's error is mostly pixel noise, which the MC-dropout spread leaves out, plus a few
large errors at the scar's border, and it is not Gaussian (on the synthetic cases about half the
targets are exactly 0, the clipped background). The recalibration gives each pixel a scale

    sigma = sqrt(floor^2 + spread^2 + border^2 p (1 - p))

(``floor``: the fit's residual sd on its training pixels; ``p``: the predicted probability;
``border`` fitted by maximum likelihood) and maps each interval level to the held-out quantile of
``|error| / sigma``, separately in three bands of ``p`` (background, border, scar; a Mondrian
split, so that the border pixels, a tenth of the pixels, get their own intervals). The model
stores the floor, the border coefficient and each band's multiple at the one-sigma level, and
writes ``factor[band(p)] * sigma`` as the uncertainty: the half-width of the central 68% interval
of a pixel's value there. docs/decisions.md says why this and not one scale factor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# the standard normal's cdf and quantile (scipy.stats.norm's own, without importing scipy.stats: 0.5 s)
from scipy.special import ndtr, ndtri

#: Central-interval levels at which the calibration is checked.
CALIBRATION_LEVELS = np.linspace(0.1, 0.9, 9)
#: Levels at which a quantile map is fitted (interpolated linearly between them).
MAP_LEVELS = np.linspace(0.05, 0.95, 19)
#: The central level of +-1 standard deviation of a Gaussian: the written uncertainty's interval.
ONE_SIGMA = float(2 * ndtr(1.0) - 1)
#: Edges of the bands of predicted probability that get their own map, and their names.
PROBABILITY_BANDS = (0.1, 0.9)
BAND_NAMES = ("background", "border", "scar")
#: A band with fewer fitting pixels than this takes the map of all pixels.
MIN_BAND_PIXELS = 50
#: A band is judged (``ece_by_band``) when it has at least this many checked pixels.
MIN_CHECKED_PIXELS = 30


def band_of(probability: np.ndarray) -> np.ndarray:
    """(n,) int band of each probability: 0 below 0.1, 1 up to 0.9, 2 above (:data:`BAND_NAMES`)."""
    return np.digitize(np.asarray(probability, np.float64), PROBABILITY_BANDS, right=True)


def border_weight(probability: np.ndarray) -> np.ndarray:
    """``sqrt(p (1 - p))`` of a probability (clipped to [0, 1]): the Bernoulli sd, largest at
    the scar's border, where a pixel between slices is most often wrong."""
    p = np.clip(np.asarray(probability, np.float64), 0.0, 1.0)
    return np.sqrt(p * (1.0 - p))


def fit_border(error: np.ndarray, base: np.ndarray, weight: np.ndarray) -> float:
    """The coefficient ``c`` of ``sigma^2 = base^2 + (c weight)^2`` that makes the errors most
    likely under a zero-mean Gaussian of sd sigma ((n,) each; ``c`` in [4.5e-5, 400])."""
    from scipy.optimize import minimize_scalar

    e2, b2, w2 = (np.asarray(a, np.float64) ** 2 for a in (error, base, weight))
    if not np.any(w2 > 0):  # no pixel near a border: nothing to fit, and no term to carry elsewhere
        return 0.0

    def nll(log_c: float) -> float:
        s2 = b2 + np.exp(2 * log_c) * w2
        return float(np.sum(0.5 * np.log(s2) + e2 / (2 * s2)))

    return float(np.exp(minimize_scalar(nll, bounds=(-10.0, 6.0), method="bounded").x))


def interval_multipliers(error: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """(len(MAP_LEVELS),) a quantile map: at each level, the multiple of ``sigma`` that holds that
    share of the ``|error|`` ((n,) each)."""
    return np.quantile(np.abs(error) / sigma, MAP_LEVELS)


def _fit(
    error: np.ndarray, base: np.ndarray, weight: np.ndarray, band: np.ndarray, on: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """(border coefficient, sigma of every pixel, (3, len(MAP_LEVELS)) map per band) fitted on ``on``."""
    c = fit_border(error[on], base[on], weight[on])
    sigma = np.sqrt(base**2 + (c * weight) ** 2)
    pooled = interval_multipliers(error[on], sigma[on])
    maps = np.array(
        [
            interval_multipliers(error[on & (band == b)], sigma[on & (band == b)])
            if np.sum(on & (band == b)) >= MIN_BAND_PIXELS
            else pooled
            for b in range(len(BAND_NAMES))
        ]
    )
    return c, sigma, maps


def _check(
    error: np.ndarray, sigma: np.ndarray, band: np.ndarray, maps: np.ndarray, on: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Coverage of the ``on`` pixels at :data:`CALIBRATION_LEVELS` (each pixel with its band's map),
    and of each band with enough pixels to judge (NaN otherwise)."""
    hits = np.zeros(len(CALIBRATION_LEVELS))
    by_band = {}
    for b, name in enumerate(BAND_NAMES):
        sel = on & (band == b)
        m = np.interp(CALIBRATION_LEVELS, MAP_LEVELS, maps[b])
        covered = np.array([np.sum(error[sel] <= q * sigma[sel]) for q in m])
        hits += covered
        enough = sel.sum() >= MIN_CHECKED_PIXELS
        by_band[name] = covered / sel.sum() if enough else np.full(len(CALIBRATION_LEVELS), np.nan)
    return hits / max(int(on.sum()), 1), by_band


def _ece(coverage: np.ndarray) -> float:
    return float(np.mean(np.abs(coverage - CALIBRATION_LEVELS)))


def _mean_judged(values: list[Any]) -> np.ndarray:
    """Mean of the directions that judged a band (numbers or arrays of one shape; NaN when none did)."""
    judged = [v for v in values if np.all(np.isfinite(v))]
    return np.mean(judged, axis=0) if judged else np.full(np.shape(values[0]), np.nan)


def calibration(
    error: np.ndarray, spread: np.ndarray, floor: np.ndarray | float, probability: np.ndarray, half: np.ndarray
) -> dict[str, Any]:
    """Check the MC spread against held-out errors, and fit and check the recalibration.

    Parameters
    ----------
    error, spread : (n,) held-out error (prediction - target) and MC spread of each pixel.
    floor : scalar or (n,) fit residual sd of the model (fold) that predicted each pixel.
    probability : (n,) predicted probability of each pixel (its group mean).
    half : (n,) bool, two halves of the pixels (e.g. odd and even slices). "After" is
        cross-fitted: fitted on one half and checked on the other, both ways, and the two ECEs
        averaged (not the pooled coverage, in which opposite misfits cancel).

    Returns
    -------
    dict: ``levels``; ``coverage_before``/``ece_before``: central Gaussian intervals of the spread
    alone; ``coverage_after``/``ece_after``: recalibrated and cross-fitted (coverage: the mean
    of both directions'; ECE: the mean absolute gap to the levels, per direction, averaged);
    ``coverage_by_band``/``ece_by_band``: the same per band of probability (NaN for a band too
    small to judge);
    ``cross_fitted`` (False when one half is empty: "after" is then in-sample); fitted on all
    pixels: ``border``, ``factors`` (each band's multiple at :data:`ONE_SIGMA`), ``floor`` (RMS),
    ``band_pixels``; ``rank_correlation``: Spearman of the written uncertainty with ``|error|``
    (whether it says which pixels are wrong, which the ECE does not).
    """
    from scipy.stats import spearmanr

    error = np.abs(np.asarray(error, np.float64))
    spread = np.maximum(np.asarray(spread, np.float64), 1e-6)
    base = np.sqrt(np.broadcast_to(np.asarray(floor, np.float64), spread.shape) ** 2 + spread**2)
    weight, band = border_weight(probability), band_of(probability)
    half = np.asarray(half, bool)
    z = ndtri(0.5 + CALIBRATION_LEVELS / 2)
    nan = float("nan")
    out: dict[str, Any] = {"levels": CALIBRATION_LEVELS.round(2).tolist(), "bands": list(BAND_NAMES)}
    if not len(error):
        return {
            **out,
            **dict.fromkeys(("ece_before", "ece_after", "floor", "rank_correlation"), nan),
            "coverage_before": [nan] * len(z),
            "coverage_after": [nan] * len(z),
            "ece_by_band": dict.fromkeys(BAND_NAMES, nan),
            "coverage_by_band": {n: [nan] * len(z) for n in BAND_NAMES},
            "cross_fitted": False,
            "border": 0.0,
            "factors": [1.0] * len(BAND_NAMES),
            "band_pixels": [0] * len(BAND_NAMES),
        }
    before = np.array([np.mean(error <= q * spread) for q in z])
    everything = np.ones(len(error), bool)
    border, sigma, maps = _fit(error, base, weight, band, everything)
    cross_fitted = bool(half.any() and not half.all())
    checked = [_check(error, sigma, band, maps, everything)]  # in-sample, when there is no other half
    if cross_fitted:
        checked = []
        for by, on in ((half, ~half), (~half, half)):
            _, side_sigma, side_maps = _fit(error, base, weight, band, by)
            checked.append(_check(error, side_sigma, band, side_maps, on))
    by_band = {n: _mean_judged([b[n] for _, b in checked]) for n in BAND_NAMES}
    factors = np.array([np.interp(ONE_SIGMA, MAP_LEVELS, m) for m in maps])
    written = factors[band] * sigma
    varies = len(error) > 2 and np.ptp(written) > 0 and np.ptp(error) > 0
    return {
        **out,
        "coverage_before": before.round(4).tolist(),
        "coverage_after": np.mean([c for c, _ in checked], axis=0).round(4).tolist(),
        "ece_before": _ece(before),
        "ece_after": float(np.mean([_ece(c) for c, _ in checked])),
        "coverage_by_band": {n: coverage.round(4).tolist() for n, coverage in by_band.items()},
        "ece_by_band": {n: float(_mean_judged([_ece(b[n]) for _, b in checked])) for n in BAND_NAMES},
        "cross_fitted": cross_fitted,
        "border": border,
        "factors": factors.tolist(),
        "floor": float(np.sqrt(np.mean(base**2 - spread**2))),
        "band_pixels": np.bincount(band, minlength=len(BAND_NAMES)).tolist(),
        "rank_correlation": float(spearmanr(written, error)[0]) if varies else nan,  # a constant has no rank
    }


def calibrated_uncertainty(
    probability: np.ndarray, spread: np.ndarray, floor: float, border: float, factors: tuple[float, ...]
) -> np.ndarray:
    """(n,) float32 written uncertainty ``factors[band(p)] * sqrt(floor^2 + spread^2 + border^2
    p (1 - p))`` of probabilities and MC spreads ((n,) each): the half-width of the central 68%
    interval of a pixel's value there. ``floor = border = 0`` and factors all 1 give the spread."""
    if floor == 0 and border == 0 and all(f == 1 for f in factors):
        return np.asarray(spread, np.float32)
    p = np.clip(np.asarray(probability, np.float64), 0.0, 1.0)
    variance = floor**2 + np.asarray(spread, np.float64) ** 2 + border**2 * p * (1 - p)
    return (np.asarray(factors, np.float64)[band_of(p)] * np.sqrt(variance)).astype(np.float32)
