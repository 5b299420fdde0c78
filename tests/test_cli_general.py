"""Options every command takes: --config, -v/-q/--log-file before or after the command, --json,
progress lines for logs; and a fast --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.io.artifacts import load_training_data


def _prepare_argv(case: dict, out: Path) -> list[str]:
    return [
        "prepare",
        "--mesh",
        str(case["mesh"]),
        "--image",
        str(case["image"]),
        "--slice-thickness",
        "8",
        "--output",
        str(out),
    ]


def test_a_config_file_gives_the_options_and_the_command_line_overrides_it(small_case, tmp_path):
    config = tmp_path / "case.yaml"
    mesh, image = Path(small_case["mesh"]), Path(small_case["image"])
    config.write_text(f"mesh: {mesh}\nimage: [{image}]\nslice_thickness: 8\nmask: {small_case['mask']}\n")
    assert main(["prepare", "--config", str(config), "--output", str(tmp_path / "a.npz")]) == 0
    # before the command, and a command-line value winning over the file's
    assert main(["--config", str(config), "prepare", "--slice-thickness", "4", "--output", str(tmp_path / "b.npz")]) == 0
    a, b = load_training_data(tmp_path / "a.npz"), load_training_data(tmp_path / "b.npz")
    assert a.stacks[0].thickness == 8.0 and b.stacks[0].thickness == 4.0
    direct = tmp_path / "c.npz"
    assert main([*_prepare_argv(small_case, direct), "--mask", str(small_case["mask"])]) == 0
    np.testing.assert_array_equal(load_training_data(direct).member_node, a.member_node)


def test_a_bad_config_file_is_one_error_line(small_case, tmp_path, capfd):
    bad = tmp_path / "bad.yaml"
    bad.write_text("slice_thicknes: 8\n")
    assert main(["prepare", "--config", str(bad), "--output", str(tmp_path / "x.npz")]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown option 'slice_thicknes'" in err[0]
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    assert main(["prepare", "--config", str(tmp_path / "list.yaml"), "--output", str(tmp_path / "x.npz")]) == 2
    assert "a config file is a YAML mapping" in capfd.readouterr().err


@pytest.mark.parametrize("where", ["before", "after"])
def test_general_options_go_before_or_after_the_command(small_case, tmp_path, capfd, where):
    log = tmp_path / "log.txt"
    general = ["-v", "--log-file", str(log)]
    assert main(_prepare_argv(small_case, tmp_path / "d.npz")) == 0
    argv = ["train", "--data", str(tmp_path / "d.npz"), "--output", str(tmp_path / "m.pt"), "--max-epochs", "2"]
    capfd.readouterr()
    assert main([*general, *argv] if where == "before" else [*argv, *general]) == 0
    assert "info: model: " in capfd.readouterr().err  # -v
    assert "pycemrg_scar_reconstruction.training: model: " in log.read_text() and " INFO " in log.read_text()
    assert main([*argv, "-q"]) == 0
    assert capfd.readouterr().err == ""  # -q: errors only


def test_json_prints_one_machine_readable_object(small_case, tmp_path, capfd):
    assert main([*_prepare_argv(small_case, tmp_path / "d.npz"), "--json"]) == 0
    out = capfd.readouterr().out
    facts = json.loads(out)  # stdout holds the JSON and nothing else
    assert facts["groups"] > 0 and facts["output"] == str(tmp_path / "d.npz")
    summary = tmp_path / "s.json"
    argv = ["train", "--data", str(tmp_path / "d.npz"), "--output", str(tmp_path / "m.pt"), "--max-epochs", "2"]
    assert main([*argv, "--json", str(summary), "--threads", "1"]) == 0
    assert "trained 2 epochs" in capfd.readouterr().out
    facts = json.loads(summary.read_text())
    assert facts["epochs"] == 2 and (facts["threads"], facts["device"]) == (1, "cpu")


def test_progress_lines_for_logs(small_case, tmp_path, capfd, monkeypatch):
    import pycemrg_scar_reconstruction.progress as progress

    monkeypatch.setattr(progress, "PROGRESS_EVERY_S", 0.0)
    assert main(_prepare_argv(small_case, tmp_path / "d.npz")) == 0  # stderr is not a terminal here
    assert "progress: prepare: " in capfd.readouterr().err
    argv = ["train", "--data", str(tmp_path / "d.npz"), "--output", str(tmp_path / "m.pt"), "--max-epochs", "3"]
    assert main(argv) == 0
    lines = [x for x in capfd.readouterr().err.splitlines() if x.startswith("progress: epoch")]
    assert len(lines) == 3 and "stops by epoch" in lines[0]
    assert main([*argv, "-q"]) == 0
    assert capfd.readouterr().err == ""


def test_help_does_not_import_torch():
    code = (
        "import sys, contextlib, io\n"
        "from pycemrg_scar_reconstruction.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for cmd in ([], ['run'], ['cohort'], ['prepare']):\n"
        "        main([*cmd, '--help'])\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def _help(capsys, argv: list[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_help_shows_the_essentials_on_one_screen(capsys):
    short = _help(capsys, ["run", "--help"])
    assert len(short.splitlines()) < 45
    for flag in ("--mesh", "--image", "--slice-thickness", "--target", "--output", "--threshold", "--device", "--threads"):
        assert flag in short
    assert "--help-all" in short and "--lr" not in short and "--mc-samples" not in short
    full = _help(capsys, ["run", "--help-all"])
    assert "--lr" in full and "--mc-samples" in full and len(full.splitlines()) > 3 * len(short.splitlines())


def test_one_spelling_for_quiet():
    from pycemrg_scar_reconstruction.cli.parser import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, parser in sub.choices.items():
        flags = {f for a in parser._actions for f in a.option_strings}
        assert "--quiet" not in flags and "-q" in flags, name


def test_no_measured_figure_in_any_help():
    """Help texts point to the docs for figures: a measured number goes stale (a Dice, a Spearman...)."""
    import re

    from pycemrg_scar_reconstruction.cli.parser import build_parser

    figure = re.compile(r"(Dice|Spearman|AUC|RMSE|MAE|ECE|faster|slower)\D{0,20}\d|\d\s*x faster", re.I)
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, parser in sub.choices.items():
        for action in parser._actions:
            assert not figure.search(str(action.help or "")), (name, action.option_strings, action.help)


def test_every_commands_full_help_renders(capsys):
    """argparse %-formats help texts: a description with a literal % (2.5-5% of the wall) must not break --help-all."""
    from pycemrg_scar_reconstruction.cli.parser import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in sub.choices:
        assert name in _help(capsys, [name, "--help-all"])
    assert "5% of the wall" in " ".join(_help(capsys, ["synth", "--help-all"]).split())


def test_run_says_the_check_and_the_burden(small_case, tmp_path, capfd):
    """``run`` prints the group check's verdict with the scar of its own slices, and the scar burden;
    its JSON has them too, as report.json holds them."""
    argv = [
        "run",
        "--mesh",
        str(small_case["mesh"]),
        "--image",
        str(small_case["image"]),
        "--slice-thickness",
        "8",
        "--output",
        str(tmp_path / "o.vtu"),
        "--max-epochs",
        "3",
        "--mc-samples",
        "2",
        "--threads",
        "1",
    ]
    capfd.readouterr()
    assert main([*argv, "--json", str(tmp_path / "s.json")]) == 0
    out = capfd.readouterr().out
    report = json.loads((tmp_path / "o_report" / "report.json").read_text())
    verdict = "PASS" if report["passed"] else "FAIL"
    check = next(line for line in out.splitlines() if line.startswith("check: "))
    assert check.startswith(f"check: {verdict}: {100 * report['overall']['share_within']:.1f}% of groups within 0.1")
    assert f"Dice {report['scar']['dice']:.3f}" in check
    facts = json.loads((tmp_path / "s.json").read_text())
    assert facts["passed"] == report["passed"] and facts["burden"] == report["burden"]
    assert f"core {report['burden']['core_ml']:.1f} mL" in out
