"""Training and prediction end to end on a tiny synthetic case."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pyvista as pv
import torch

from pycemrg_scar_reconstruction import MeshConfig, PredictConfig, TrainConfig, predict
from pycemrg_scar_reconstruction.api import prepare
from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.config import PrepareConfig, RuntimeConfig, StackConfig
from pycemrg_scar_reconstruction.device import torch_threads
from pycemrg_scar_reconstruction.errors import InputError
from pycemrg_scar_reconstruction.fitted import FittedModel
from pycemrg_scar_reconstruction.io.artifacts import load_model, save_model
from pycemrg_scar_reconstruction.metrics import group_errors
from pycemrg_scar_reconstruction.prediction import mc_predict, nodes_per_batch
from pycemrg_scar_reconstruction.training import fit

FAST = dict(max_epochs=60, patience=60, batch_size=1024)
QUIET = RuntimeConfig(quiet=True)


@pytest.fixture(scope="module")
def data(small_case):
    stack = StackConfig(path=small_case["image"], mask=small_case["mask"], slice_thickness=8)
    return prepare(PrepareConfig(mesh=MeshConfig(path=small_case["mesh"]), stacks=[stack]))


@pytest.fixture(scope="module")
def fitted(data) -> FittedModel:
    return fit(data, TrainConfig.from_preset(**FAST), QUIET)


def test_training_fits_the_group_constraints(data, fitted):
    # where training starts: the output bias puts every node at the mean target
    before = np.sqrt(np.mean(group_errors(data, np.full(data.n_nodes, data.group_target.mean())) ** 2))
    after = np.sqrt(np.mean(group_errors(data, mc_predict(fitted, data.points, 10, 0)[0]) ** 2))
    assert after < 0.25 * before, (before, after)
    losses = [h["loss"] for h in fitted.history]
    assert losses[fitted.best_epoch - 1] == min(losses)
    assert losses[-1] < 0.5 * losses[0]


def test_per_row_dropout_masks_also_fit_the_group_constraints(data):
    # the default draws one mask per MC pass and step; the paper preset's standard dropout must work too
    before = np.sqrt(np.mean(group_errors(data, np.full(data.n_nodes, data.group_target.mean())) ** 2))
    f = fit(data, TrainConfig.from_preset(**FAST, dropout_masks="row", mc_samples=2), QUIET)
    after = np.sqrt(np.mean(group_errors(data, mc_predict(f, data.points, 10, 0)[0]) ** 2))
    assert after < 0.25 * before, (before, after)


def test_a_linear_output_trains_unclipped_predicts_within_0_1_and_survives_a_checkpoint(data, tmp_path):
    """``output_activation`` none: the loss sees the last layer's value as it is (healthy and scar
    fitted alike, nothing saturates), prediction clips it to [0, 1]."""
    before = np.sqrt(np.mean(group_errors(data, np.full(data.n_nodes, data.group_target.mean())) ** 2))
    f = fit(data, TrainConfig.from_preset(**FAST, model={"output_activation": "none"}), QUIET)
    assert float(f.net.out.bias) != pytest.approx(np.log(data.group_target.mean() / (1 - data.group_target.mean())))
    x = torch.as_tensor((data.points - data.norm_center) / data.norm_scale, dtype=torch.float32)
    with torch.no_grad():
        raw = f.net(x, samples=4, dropout=True, masks=f.net.sample_masks(4, torch.Generator().manual_seed(0)), clip=False)
    assert float(raw.min()) < 0.0 or float(raw.max()) > 1.0  # a linear output overshoots somewhere
    p, sd = mc_predict(f, data.points, 10, 0)
    assert p.min() >= 0.0 and p.max() <= 1.0 and np.all(sd >= 0)
    after = np.sqrt(np.mean(group_errors(data, p) ** 2))
    assert after < 0.25 * before, (before, after)
    save_model(f, tmp_path / "m.pt")
    back = load_model(tmp_path / "m.pt")
    assert back.config.model.output_activation == "none"
    np.testing.assert_array_equal(mc_predict(back, data.points, 5, 3)[0], mc_predict(f, data.points, 5, 3)[0])


def test_same_seed_same_model_on_cpu(data):
    cfg = TrainConfig.from_preset(**{**FAST, "max_epochs": 3})
    a, b = fit(data, cfg, QUIET), fit(data, cfg, QUIET)
    for (ka, va), (kb, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    c = fit(data, TrainConfig.from_preset(**{**FAST, "max_epochs": 3, "seed": 1}), QUIET)
    assert not torch.equal(a.net.out.weight, c.net.out.weight)


def test_one_thread_and_two_train_the_same_model(data):
    """The thread count (which ``run`` chooses from the machine's load) changes no bit of the model:
    torch's sigmoid computed each thread's last elements another way, and training followed."""
    cfg = TrainConfig.from_preset(**{**FAST, "max_epochs": 30})
    fitted = []
    for threads in (1, 2):
        with torch_threads(RuntimeConfig(threads=threads)):
            fitted.append(fit(data, cfg, QUIET))
    assert [h["loss"] for h in fitted[0].history] == [h["loss"] for h in fitted[1].history]
    for (name, a), (_, b) in zip(fitted[0].net.state_dict().items(), fitted[1].net.state_dict().items()):
        assert torch.equal(a, b), name


def test_early_stopping_restores_the_best_weights(data):
    cfg = TrainConfig.from_preset(**{**FAST, "max_epochs": 200, "patience": 3, "min_delta": 0.5})
    f = fit(data, cfg, QUIET)
    assert f.stop_reason == "patience"
    assert len(f.history) == f.best_epoch + 3


def test_group_sample_is_off_unless_the_median_group_is_larger(data):
    median = int(np.median(data.group_count))
    assert data.group_count.max() > median  # some groups are larger than the median one
    base = fit(data, TrainConfig.from_preset(**{**FAST, "max_epochs": 3, "group_sample": 0}), QUIET)
    same = fit(data, TrainConfig.from_preset(**{**FAST, "max_epochs": 3, "group_sample": median}), QUIET)
    assert torch.equal(base.net.out.weight, same.net.out.weight)
    other = fit(data, TrainConfig.from_preset(**{**FAST, "max_epochs": 3, "group_sample": median - 1}), QUIET)
    assert not torch.equal(base.net.out.weight, other.net.out.weight)
    assert (same.data_summary["group_sample_applied"], other.data_summary["group_sample_applied"]) == (0, median - 1)


def test_group_sample_trains_on_subsets_and_still_fits_the_groups():
    # coarse 5 mm pixels: groups of 8 nodes on median, up to ~100
    from pycemrg_scar_reconstruction.config import SynthConfig
    from pycemrg_scar_reconstruction.data import build_training_data
    from pycemrg_scar_reconstruction.synthetic import make_case

    c = make_case(SynthConfig(seed=3, n_nodes=8000, samples=300_000, pixel_spacing=5.0))
    data = build_training_data(c.points, [c.stack])
    k = 4
    assert np.median(data.group_count) > k
    f = fit(data, TrainConfig.from_preset(**{**FAST, "group_sample": k}), QUIET)
    before = np.sqrt(np.mean(group_errors(data, np.full(data.n_nodes, data.group_target.mean())) ** 2))
    after = np.sqrt(np.mean(group_errors(data, mc_predict(f, data.points, 10, 0)[0]) ** 2))
    assert after < 0.35 * before, (before, after)


def test_fast_start_doubles_the_rate_then_returns_to_it(data):
    f = fit(
        data,
        TrainConfig.from_preset(**{**FAST, "max_epochs": 5, "fast_start_epochs": 2, "schedule": "constant", "lr": 1e-3}),
        QUIET,
    )
    assert [h["lr"] for h in f.history] == [2e-3, 2e-3, 1e-3, 1e-3, 1e-3]
    g = fit(
        data,
        TrainConfig.from_preset(**{**FAST, "max_epochs": 2, "fast_start_epochs": 0, "schedule": "constant", "lr": 1e-3}),
        QUIET,
    )
    assert [h["lr"] for h in g.history] == [1e-3, 1e-3]


def test_anisotropic_encoding_follows_the_slice_normal_and_survives_a_checkpoint(data, tmp_path):
    from pycemrg_scar_reconstruction.model import FourierFeatures
    from pycemrg_scar_reconstruction.stack import main_slice_normal

    f = fit(data, TrainConfig.from_preset(**{**FAST, "max_epochs": 2}, model={"fourier_anisotropy": 4.0}), QUIET)
    m, seed = f.config.model, f.config.seed
    normal = main_slice_normal(data.stacks)
    expected = FourierFeatures(m.fourier_features, m.fourier_scale, seed, 4.0, normal).B
    assert torch.equal(f.net.encode.B, expected)
    assert not torch.equal(expected, FourierFeatures(m.fourier_features, m.fourier_scale, seed).B)
    save_model(f, tmp_path / "a.pt")
    assert torch.equal(load_model(tmp_path / "a.pt").net.encode.B, expected)


def test_fourier_frequencies_in_mm_follow_the_mesh_size_and_survive_a_checkpoint(data, tmp_path):
    """With ``fourier_unit_mm`` the frequencies are per that many mm: per normalised unit they scale
    with the data's normalisation scale (half the mesh's largest extent), exactly."""
    from pycemrg_scar_reconstruction.model import FourierFeatures, ScarMLP
    from pycemrg_scar_reconstruction.stack import main_slice_normal

    unit = data.norm_scale / 2.0  # the mesh is two units across: frequencies twice the default's
    f = fit(data, TrainConfig.from_preset(**{**FAST, "max_epochs": 2}, model={"fourier_unit_mm": unit}), QUIET)
    m, seed = f.config.model, f.config.seed
    default = FourierFeatures(
        m.fourier_features, m.fourier_scale, seed, m.fourier_anisotropy, main_slice_normal(data.stacks)
    )
    torch.testing.assert_close(f.net.encode.B, 2.0 * default.B)
    save_model(f, tmp_path / "u.pt")
    assert torch.equal(load_model(tmp_path / "u.pt").net.encode.B, f.net.encode.B)
    with pytest.raises(ValueError, match="norm_scale_mm"):
        ScarMLP(m)


def test_a_largest_fourier_unit_sharpens_only_meshes_larger_than_it():
    """``fourier_max_unit_mm``: a mesh whose normalised unit is larger than the cap is encoded per
    the cap's mm (frequencies times scale / cap); a smaller one keeps the default's frequencies."""
    from pycemrg_scar_reconstruction.config import ModelConfig
    from pycemrg_scar_reconstruction.model import ScarMLP

    capped = ModelConfig(fourier_max_unit_mm=50.0)
    plain = ScarMLP(ModelConfig(fourier_max_unit_mm=None), seed=3, norm_scale_mm=75.0).encode.B
    large, small = ScarMLP(capped, seed=3, norm_scale_mm=75.0), ScarMLP(capped, seed=3, norm_scale_mm=40.0)
    torch.testing.assert_close(large.encode.B, 1.5 * plain)
    assert large.capped_unit_mm == 50.0 and small.capped_unit_mm is None
    assert torch.equal(small.encode.B, plain)
    assert torch.equal(ScarMLP(capped, seed=3, norm_scale_mm=50.0).encode.B, plain)
    # a fixed unit replaces the cap
    fixed = ModelConfig(fourier_unit_mm=25.0, fourier_max_unit_mm=50.0)
    torch.testing.assert_close(ScarMLP(fixed, seed=3, norm_scale_mm=75.0).encode.B, 3.0 * plain)


def test_training_says_when_the_fourier_cap_acts(data, caplog):
    import logging

    cap = data.norm_scale / 2.0
    with caplog.at_level(logging.INFO, logger="pycemrg_scar_reconstruction"):
        fit(data, TrainConfig.from_preset(**{**FAST, "max_epochs": 1}, model={"fourier_max_unit_mm": cap}), QUIET)
    assert f"Fourier frequencies per {cap:.0f} mm" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pycemrg_scar_reconstruction"):
        fit(data, TrainConfig.from_preset(**{**FAST, "max_epochs": 1}), QUIET)  # this small mesh: under 55 mm
    assert "Fourier frequencies per" not in caplog.text


def test_a_checkpoint_from_before_the_fourier_cap_loads_as_trained(fitted):
    """A checkpoint whose config has no ``fourier_max_unit_mm`` was trained per normalised unit: it
    loads with the cap off (its config says what it was trained with) and the same frequencies."""

    ckpt = fitted.to_checkpoint()
    config = json.loads(ckpt["config"])
    del config["model"]["fourier_max_unit_mm"]
    older = type(fitted).from_checkpoint({**ckpt, "config": json.dumps(config)})
    assert older.config.model.fourier_max_unit_mm is None
    assert fitted.config.model.fourier_max_unit_mm == 55.0
    assert torch.equal(older.net.encode.B, fitted.net.encode.B)


def test_paper_preset_is_the_published_setup():
    cfg = TrainConfig.from_preset("paper")
    m = cfg.model
    assert (m.encoding, m.width, m.depth, m.dropout, m.dropout_position) == ("none", 128, 4, 0.1, "all")
    assert (cfg.mc_samples, cfg.lr, cfg.lr_max, cfg.schedule, cfg.step_size) == (3, 1e-3, 1e-2, "cyclic", 2000)
    assert cfg.dropout_masks == "row"  # standard dropout: a fresh mask per membership
    assert (cfg.batch_size, cfg.patience, cfg.max_epochs, cfg.fast_start_epochs) == (10_000, 500, 10_000, 0)
    assert TrainConfig.from_preset("paper", patience=7, model={"width": 32}).patience == 7
    # 4 x 128 on raw xyz: 3*128+128 + 3*(128*128+128) + 128+1 parameters
    from pycemrg_scar_reconstruction.model import ScarMLP, n_parameters

    assert n_parameters(ScarMLP(m)) == 3 * 128 + 128 + 3 * (128 * 128 + 128) + 129


def test_checkpoint_round_trip_and_bad_files(fitted, data, tmp_path):
    path = tmp_path / "m.pt"
    history = save_model(fitted, path)
    assert history.exists()
    raw = torch.load(path, weights_only=True)  # no pickle of arbitrary objects
    assert raw["data_hash"] == fitted.data_hash and raw["torch_version"] == torch.__version__
    back = load_model(path)
    np.testing.assert_array_equal(mc_predict(back, data.points, 5, seed=3)[0], mc_predict(fitted, data.points, 5, seed=3)[0])
    (tmp_path / "trunc.pt").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(InputError, match="trunc.pt"):
        load_model(tmp_path / "trunc.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="foreign.pt"):
        load_model(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(InputError, match="text.pt"):
        load_model(tmp_path / "text.pt")


def test_training_records_its_threads_and_device_through_the_checkpoint(data, fitted, tmp_path):
    with torch_threads(RuntimeConfig(threads=1)):  # as the api's train wraps fit
        one = fit(data, TrainConfig.from_preset(**FAST), QUIET)
    assert (one.threads, one.device, one.trained_on) == (1, "cpu", "1 CPU thread")
    assert fitted.threads >= 1 and fitted.device == "cpu"
    path = tmp_path / "m.pt"
    history = save_model(one, path)
    back = load_model(path)
    assert (back.threads, back.device) == (1, "cpu")
    assert json.loads(history.read_text())["threads"] == 1
    # a model saved before the record loads with it unknown
    older = type(one).from_checkpoint({k: v for k, v in one.to_checkpoint().items() if k not in ("threads", "device")})
    assert (older.threads, older.device, older.trained_on) == (0, "", "")
    # a model saved with round 1's field test (`field_tol`, removed) loads as it was trained
    ckpt = one.to_checkpoint()
    stored = json.loads(ckpt["config"])
    ckpt["config"] = json.dumps({**stored, "stop_on_field": False, "field_tol": 0.02})
    assert type(one).from_checkpoint(ckpt).config.stop_on_field is False


def test_prediction_is_seeded_and_batched(fitted, data):
    a = mc_predict(fitted, data.points, 8, seed=1)
    b = mc_predict(fitted, data.points, 8, seed=1, memory_mb=1)  # many small batches
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)
    c = mc_predict(fitted, data.points, 8, seed=2)
    assert not np.array_equal(a[1], c[1])
    assert np.all(a[1] >= 0) and a[1].max() > 0
    assert nodes_per_batch(64, 20, 1) == 1024  # a tiny budget still gets a useful batch
    assert nodes_per_batch(64, 20, 10**6) == 262_144  # a huge one gains nothing past the cap
    # hidden layers run per pass ("all" dropout): about 20x the activations, so about 1/20 the nodes
    per_pass, once = nodes_per_batch(64, 20, 100, wide_copies=20), nodes_per_batch(64, 20, 100)
    assert 15 * per_pass < once < 20 * per_pass
    assert per_pass * 20 * 64 * 4 <= 100 * 2**20  # the per-pass activations of one layer fit the budget


def test_predict_keeps_cells_and_arrays(fitted, data, small_case, tmp_path):
    mesh = pv.read(small_case["mesh"])
    mesh.point_data["fibres"] = np.arange(mesh.n_points, dtype=np.float32)
    mesh.cell_data["region"] = np.arange(mesh.n_cells, dtype=np.int32) % 3
    mesh.save(tmp_path / "in.vtu")
    result = predict(fitted, MeshConfig(path=tmp_path / "in.vtu"), tmp_path / "out.vtu", PredictConfig(threshold=0.5))
    out = pv.read(tmp_path / "out.vtu")
    assert out.n_cells == mesh.n_cells and out.n_points == mesh.n_points
    np.testing.assert_array_equal(out.cells, mesh.cells)
    np.testing.assert_array_equal(out.point_data["fibres"], mesh.point_data["fibres"])
    np.testing.assert_array_equal(out.cell_data["region"], mesh.cell_data["region"])
    for name in ("scar_probability", "scar_uncertainty", "scar_binary", "scar_supervised", "scar_truth"):
        assert name in out.point_data
    np.testing.assert_array_equal(out.point_data["scar_supervised"].astype(bool), data.supervised())
    np.testing.assert_array_equal(out.point_data["scar_binary"], (result.probability >= 0.5).astype(np.uint8))


def test_a_mesh_mostly_outside_the_trained_region_is_refused_unless_allowed(fitted, small_case, tmp_path, caplog):
    mesh = pv.read(small_case["mesh"])
    mesh.points = np.asarray(mesh.points) * 1.6
    mesh.save(tmp_path / "big.vtu")
    big = MeshConfig(path=tmp_path / "big.vtu")
    with pytest.raises(InputError, match="outside the region the model was trained on.*`allow_extrapolation`"):
        predict(fitted, big, None, PredictConfig(mc_samples=2))
    result = predict(fitted, big, None, PredictConfig(mc_samples=2, allow_extrapolation=True))
    assert np.all(np.isfinite(result.probability))
    assert "outside the region the model was trained on" in caplog.text  # still said, as a warning


def prepare_args(case) -> list[str]:
    """The CLI inputs of a synthetic case: mesh, stack, mask, 8 mm slices."""
    return [
        "--mesh",
        str(case["mesh"]),
        "--image",
        str(case["image"]),
        "--mask",
        str(case["mask"]),
        "--slice-thickness",
        "8",
    ]


def test_cli_train_predict_run(small_case, tmp_path, capsys):
    prep = prepare_args(small_case)
    assert main(["prepare", *map(str, prep), "--output", str(tmp_path / "d.npz")]) == 0
    fast = ["--max-epochs", "4", "--batch-size", "4096"]
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--output", str(tmp_path / "m.pt"), *fast]) == 0
    assert (tmp_path / "m.history.json").exists()
    assert (
        main(
            [
                "predict",
                "--model",
                str(tmp_path / "m.pt"),
                "--mesh",
                str(small_case["mesh"]),
                "--output",
                str(tmp_path / "p.vtk"),
                "--mc-samples",
                "4",
                "--threshold",
                "0.4",
            ]
        )
        == 0
    )
    assert "scar_binary" in pv.read(tmp_path / "p.vtk").point_data
    assert main(["run", *map(str, prep), "--output", str(tmp_path / "r" / "case.vtu"), *fast, "--mc-samples", "3"]) == 0
    for name in ("case.vtu", "case_data.npz", "case_model.pt", "case_model.history.json"):
        assert (tmp_path / "r" / name).exists()
    capsys.readouterr()
    # bad input: not a model; an output format we cannot write
    (tmp_path / "junk.pt").write_text("x")
    assert (
        main(
            [
                "predict",
                "--model",
                str(tmp_path / "junk.pt"),
                "--mesh",
                str(small_case["mesh"]),
                "--output",
                str(tmp_path / "q.vtu"),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "predict",
                "--model",
                str(tmp_path / "m.pt"),
                "--mesh",
                str(small_case["mesh"]),
                "--output",
                str(tmp_path / "q.stl"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "junk.pt" in err and "q.stl" in err and "Traceback" not in err
    assert not (tmp_path / "q.vtu").exists() and not (tmp_path / "q.stl").exists()


def test_bf16_autocast_on_cpu_trains(data):
    from pycemrg_scar_reconstruction.device import autocast_dtype

    assert autocast_dtype("auto", torch.device("cpu")) is None  # fp32 by default on CPU
    assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    f = fit(data, TrainConfig.from_preset(**{**FAST, "max_epochs": 8}), RuntimeConfig(amp="bf16", quiet=True))
    losses = [h["loss"] for h in f.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_cyclic_schedule_is_a_triangle_stepped_per_batch(data):
    # one batch per epoch, half-cycle of 2 steps: 1e-3 -> 5.5e-3 -> 1e-2 -> 5.5e-3 -> 1e-3 -> 5.5e-3
    cfg = TrainConfig.from_preset(
        **{
            **FAST,
            "max_epochs": 5,
            "fast_start_epochs": 0,
            "schedule": "cyclic",
            "lr": 1e-3,
            "lr_max": 1e-2,
            "step_size": 2,
            "batch_size": 10**8,
        }
    )
    f = fit(data, cfg, QUIET)
    np.testing.assert_allclose([h["lr"] for h in f.history], [5.5e-3, 1e-2, 5.5e-3, 1e-3, 5.5e-3])


def test_onecycle_schedule_warms_up_anneals_stops_at_its_end_and_is_seeded(data):
    """One cycle of 12 epochs: the rate rises to lr_max over the first quarter and falls to near
    zero; training stops at the cycle's end (patience does not cut it), keeps the best epoch, fits
    the groups, and the same seed gives the same model."""
    cfg = TrainConfig.from_preset(
        **{**FAST, "schedule": "onecycle", "cycle_epochs": 12, "patience": 1, "lr_max": 1e-2, "max_epochs": 500}
    )
    f = fit(data, cfg, QUIET)
    rates = [h["lr"] for h in f.history]
    assert len(f.history) == 12 and f.stop_reason == "schedule end"
    peak = int(np.argmax(rates))
    assert 1 <= peak <= 3 and rates[peak] == pytest.approx(1e-2, rel=0.05)
    assert all(a >= b for a, b in zip(rates[peak:], rates[peak + 1 :])) and rates[-1] < 1e-3
    losses = [h["loss"] for h in f.history]
    assert losses[f.best_epoch - 1] == min(losses) and min(losses) < 0.5 * losses[0]
    again = fit(data, cfg, QUIET)
    assert all(torch.equal(a, b) for a, b in zip(f.net.state_dict().values(), again.net.state_dict().values()))
    # max_epochs still bounds it
    short = fit(
        data, TrainConfig.from_preset(**{**FAST, "schedule": "onecycle", "cycle_epochs": 12, "max_epochs": 5}), QUIET
    )
    assert len(short.history) == 5 and short.stop_reason == "max_epochs"


def test_halvings_stop_training_where_patience_would_go_on(data):
    """With `halvings`, training stops at the first epoch whose rate is the base rate halved that
    many times by the plateau schedule, keeps the best epoch up to there, and is otherwise the
    same run as without the rule."""
    base = {**FAST, "patience": 9, "max_epochs": 400, "min_delta": 0.05, "halvings": 0, "stop_on_field": False}
    free = fit(data, TrainConfig.from_preset(**base), QUIET)
    rates = [h["lr"] for h in free.history]
    cut = TrainConfig.from_preset(**{**base, "halvings": 2})
    stopped = fit(data, cut, QUIET)
    first = next(i for i, r in enumerate(rates) if r <= cut.lr / 4 * (1 + 1e-9)) + 1
    assert first < len(free.history)  # the rule fires before patience does
    assert len(stopped.history) == first and stopped.stop_reason == "rate halved 2 times"
    assert [h["loss"] for h in stopped.history] == [h["loss"] for h in free.history[:first]]


def test_lbfgs_finish_converges_stops_after_its_steps_and_is_seeded(data):
    """Adam for finish_after epochs, then finish_steps L-BFGS steps: one history row per step,
    the loss below Adam's at the hand-over, the last step's weights kept, the same seed gives the
    same model, and the options that cannot go with it are refused."""
    cfg = TrainConfig.from_preset(**{**FAST, "finish": "lbfgs", "finish_after": 6, "finish_steps": 4})
    f = fit(data, cfg, QUIET)
    assert len(f.history) == 6 + 4 and f.stop_reason == "lbfgs steps" and f.best_epoch == 10
    assert [h["lr"] for h in f.history[6:]] == [1.0] * 4
    adam_end, lbfgs_end = f.history[5]["loss"], f.history[-1]["loss"]
    assert lbfgs_end < 0.8 * adam_end  # L-BFGS moves the fit on
    adam_only = fit(data, TrainConfig.from_preset(**{**FAST, "max_epochs": 6}), QUIET)
    assert adam_only.history[5]["loss"] == adam_end  # the same Adam phase
    again = fit(data, cfg, QUIET)
    assert all(torch.equal(a, b) for a, b in zip(f.net.state_dict().values(), again.net.state_dict().values()))
    with pytest.raises(ValueError, match="dropout_masks step"):
        TrainConfig(finish="lbfgs", dropout_masks="row")
    with pytest.raises(ValueError, match="onecycle"):
        TrainConfig(finish="lbfgs", schedule="onecycle")


@pytest.mark.slow
def test_compiled_model_trains_like_the_eager_one(data):
    cfg = TrainConfig.from_preset(**{**FAST, "max_epochs": 2})
    eager = fit(data, cfg, QUIET)
    compiled = fit(data, cfg, RuntimeConfig(compile=True, quiet=True))
    np.testing.assert_allclose([h["loss"] for h in compiled.history], [h["loss"] for h in eager.history], rtol=1e-4)


@pytest.mark.slow
def test_deterministic_runs_are_bit_identical_across_processes(small_case, tmp_path):
    import subprocess
    import sys

    prep = prepare_args(small_case)
    assert main(["prepare", *map(str, prep), "--output", str(tmp_path / "d.npz")]) == 0
    states = []
    for name in ("a", "b"):
        cmd = [
            sys.executable,
            "-m",
            "pycemrg_scar_reconstruction.cli",
            "train",
            "--data",
            str(tmp_path / "d.npz"),
            "--output",
            str(tmp_path / f"{name}.pt"),
            "--max-epochs",
            "4",
            "-q",
            "--deterministic",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        states.append(torch.load(tmp_path / f"{name}.pt", weights_only=True)["state_dict"])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_reconstruct_takes_explicit_output_paths(small_case, tmp_path):
    from pycemrg_scar_reconstruction.api import reconstruct

    config = PrepareConfig(
        mesh=MeshConfig(path=small_case["mesh"]), stacks=[StackConfig(path=small_case["image"], slice_thickness=8.0)]
    )
    out = tmp_path / "meshes" / "scar.vtu"
    reconstruct(
        config,
        TrainConfig(max_epochs=3),
        out,
        PredictConfig(mc_samples=2),
        runtime=QUIET,
        data_path=tmp_path / "data" / "patient.npz",
        model_path=tmp_path / "models" / "patient.pt",
        report_dir=tmp_path / "reports" / "patient",
    )
    assert sorted(p.name for p in out.parent.iterdir()) == ["scar.vtu"]
    assert (tmp_path / "data" / "patient.npz").exists() and (tmp_path / "models" / "patient.pt").exists()
    assert (tmp_path / "reports" / "patient" / "report.html").exists()


def test_run_reads_the_mesh_once_and_reports_what_it_wrote(small_case, tmp_path, monkeypatch):
    """``reconstruct`` reads the mesh once for prepare and predict and gives the report the mesh it
    wrote: the report is the one ``report`` makes from the written file."""
    import importlib

    from pycemrg_scar_reconstruction.api import reconstruct, report
    from pycemrg_scar_reconstruction.io import meshes

    # the api package exports functions under its modules' names: the modules by their full names
    modules = [
        importlib.import_module(f"pycemrg_scar_reconstruction.api.{m}") for m in ("run", "prepare", "predict", "report")
    ]

    reads: list[str] = []

    def counted(config):
        reads.append(str(config.path))
        return meshes.read_mesh(config)

    for module in modules:
        monkeypatch.setattr(module, "read_mesh", counted)
    config = PrepareConfig(
        mesh=MeshConfig(path=small_case["mesh"]), stacks=[StackConfig(path=small_case["image"], slice_thickness=8.0)]
    )
    out = tmp_path / "scar.vtu"
    result = reconstruct(config, TrainConfig(max_epochs=3), out, PredictConfig(mc_samples=2), runtime=QUIET)
    assert reads == [str(small_case["mesh"])]
    written = pv.read(out)
    for name in ("scar_probability", "scar_uncertainty", "scar_supervised"):
        np.testing.assert_array_equal(np.asarray(result.mesh.point_data[name]), np.asarray(written.point_data[name]))
    again = report(tmp_path / "again", tmp_path / "scar_data.npz", MeshConfig(path=out), tmp_path / "scar_model.pt")
    assert reads[-1] == str(out)  # given no mesh, the report reads the file
    first = json.loads((tmp_path / "scar_report" / "report.json").read_text())
    for key in ("overall", "passed", "support"):
        assert first[key] == again[key], key


def test_run_predicts_as_predict_does_with_a_region(small_case, tmp_path):
    """``run`` hands predict its training data's supervised nodes and writes the mesh while the
    report draws: the output is the one ``predict`` makes from the saved model, region and all."""
    from pycemrg_scar_reconstruction.api import reconstruct

    mesh = pv.read(small_case["mesh"])
    mesh.point_data["half"] = (mesh.points[:, 0] > np.median(mesh.points[:, 0])).astype(np.int32)
    mesh.save(tmp_path / "halved.vtu")
    mesh_config = MeshConfig(path=tmp_path / "halved.vtu", region_array="half")
    config = PrepareConfig(mesh=mesh_config, stacks=[StackConfig(path=small_case["image"], slice_thickness=8.0)])
    out = tmp_path / "scar.vtu"
    result = reconstruct(config, TrainConfig(max_epochs=3), out, PredictConfig(mc_samples=4), runtime=QUIET)
    again = predict(tmp_path / "scar_model.pt", mesh_config, tmp_path / "again.vtu", PredictConfig(mc_samples=4))
    written = pv.read(out)
    assert 0 < result.supervised.sum() < (mesh.point_data["half"] == 1).sum()
    for name in ("scar_probability", "scar_uncertainty", "scar_supervised", "scar_in_region", "scar_prior"):
        np.testing.assert_array_equal(np.asarray(written.point_data[name]), np.asarray(again.mesh.point_data[name]))


def test_a_failed_mesh_write_during_the_report_fails_the_run(small_case, tmp_path, monkeypatch):
    import importlib

    from pycemrg_scar_reconstruction.api import reconstruct

    def broken(mesh, path):
        raise InputError(f"{path}: no space left")

    monkeypatch.setattr(importlib.import_module("pycemrg_scar_reconstruction.api.run"), "write_mesh", broken)
    config = PrepareConfig(
        mesh=MeshConfig(path=small_case["mesh"]), stacks=[StackConfig(path=small_case["image"], slice_thickness=8.0)]
    )
    with pytest.raises(InputError, match="no space left"):
        reconstruct(config, TrainConfig(max_epochs=3), tmp_path / "scar.vtu", PredictConfig(mc_samples=2), runtime=QUIET)
    assert not (tmp_path / "scar.vtu").exists()


def test_stop_on_field_stops_when_the_scar_has_settled_and_not_before(data):
    base = dict(
        max_epochs=8, patience=100, batch_size=1024, fast_start_epochs=0, stop_on_field=True, field_every=1, field_window=1
    )
    # a Dice of 0.001 between two checks' scar counts as settled: the second check stops (the first has nothing to compare)
    still = fit(data, TrainConfig(**base, field_agreement=0.001, field_after_halvings=0), QUIET)
    assert still.stop_reason == "scar settled" and len(still.history) == 2
    again = fit(data, TrainConfig(**base, field_agreement=0.001, field_after_halvings=0), QUIET)  # seeded
    assert again.stop_reason == "scar settled" and all(
        torch.equal(a, b) for a, b in zip(still.net.state_dict().values(), again.net.state_dict().values())
    )
    # the checks count only once the rate has been halved field_after_halvings times, which 8 epochs never reach
    gated = fit(data, TrainConfig(**base, field_agreement=0.001, field_after_halvings=10), QUIET)
    assert gated.stop_reason == "max_epochs" and len(gated.history) == 8
    plain = fit(data, TrainConfig(**{**base, "stop_on_field": False}), QUIET)
    # the rule only decides when to stop: the same epochs give the same weights
    a, b = gated.net.state_dict(), plain.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the halvings are the plateau schedule's: a one-cycle rate falls far below the gate's, and never opens it
    cycled = fit(data, TrainConfig(**base, field_agreement=0.001, schedule="onecycle", cycle_epochs=8), QUIET)
    assert cycled.stop_reason == "schedule end" and len(cycled.history) == 8


def test_stop_on_field_compares_the_agreement_with_its_bar(data, monkeypatch):
    """The Dice between two checks' scar is held against `field_agreement`: below it training goes on."""
    from pycemrg_scar_reconstruction import training

    base = dict(max_epochs=6, patience=100, batch_size=1024, fast_start_epochs=0, field_every=1, field_window=1)
    monkeypatch.setattr(training, "dice", lambda a, b: 0.98)
    below = fit(data, TrainConfig(**base, field_after_halvings=0, field_agreement=0.99), QUIET)
    assert below.stop_reason == "max_epochs" and len(below.history) == 6
    above = fit(data, TrainConfig(**base, field_after_halvings=0, field_agreement=0.98), QUIET)
    assert above.stop_reason == "scar settled" and len(above.history) == 2
