"""Training recipes: the bundled YAML files load, their schedules give the papers' learning rates, and bad recipes or
flags fail with one line."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _cli import cli_in_process
from inceptorch.errors import UserError
from inceptorch.train.config import read_recipe, recipe_names, resolve
from inceptorch.train.optim import build_optimizer, build_scheduler, lr_factor


def _lrs(cfg, steps_per_epoch: int, epochs: int) -> list[float]:
    """The learning rate at the start of each epoch, from the optimizer as training would step it."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer(torch.nn.Linear(1, 1), cfg)
    opt.param_groups[0]["params"] = [param]
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        for _ in range(steps_per_epoch):
            opt.step()
            sched.step()
    return lrs


def test_bundled_recipes_open_with_command_and_expectation():
    assert {"googlenet_paper", "inception_v3_paper", "modern", "demo"} <= set(recipe_names())
    folder = Path(__file__).resolve().parents[1] / "src" / "inceptorch" / "configs"
    for name in recipe_names():
        head = (folder / f"{name}.yaml").read_text().splitlines()[:6]
        assert any("inceptorch " in line for line in head), name
        assert any("Expected" in line for line in head), name
        resolve(read_recipe(name), {}, name)  # every key known, every value well typed


def test_googlenet_paper_lr_drops_4_percent_every_8_epochs():
    cfg = resolve(read_recipe("googlenet_paper"), {})
    assert (cfg.optimizer, cfg.momentum, cfg.aux_weight, cfg.aug) == ("sgd", 0.9, 0.3, "paper")
    assert cfg.ema_decay is not None
    lrs = _lrs(cfg, steps_per_epoch=3, epochs=25)
    assert lrs == pytest.approx([cfg.lr * 0.96 ** (e // 8) for e in range(25)], rel=1e-12)
    assert lrs[7] == pytest.approx(cfg.lr) and lrs[8] == pytest.approx(cfg.lr * 0.96)


def test_inception_v3_paper_rmsprop_and_lr():
    cfg = resolve(read_recipe("inception_v3_paper"), {})
    opt = build_optimizer(torch.nn.Linear(2, 2), cfg)
    assert isinstance(opt, torch.optim.RMSprop)
    group = opt.param_groups[0]
    assert (group["alpha"], group["eps"], group["lr"]) == (0.9, 1.0, 0.045)
    assert (cfg.clip_grad, cfg.label_smoothing) == (2.0, 0.1)
    lrs = _lrs(cfg, steps_per_epoch=2, epochs=9)
    assert lrs == pytest.approx([0.045 * 0.94 ** (e // 2) for e in range(9)], rel=1e-12)


def test_modern_warmup_then_cosine():
    cfg = resolve(read_recipe("modern"), {"epochs": 20})
    w, lo = cfg.warmup_epochs, cfg.min_lr
    assert cfg.optimizer == "adamw" and w > 0
    assert lr_factor(cfg, 0) == pytest.approx(cfg.warmup_lr)
    assert lr_factor(cfg, w / 2) == pytest.approx(cfg.warmup_lr + (1 - cfg.warmup_lr) / 2)
    assert lr_factor(cfg, w) == pytest.approx(1.0)
    mid = w + (20 - w) / 2
    assert lr_factor(cfg, mid) == pytest.approx(lo + (1 - lo) * 0.5)
    assert lr_factor(cfg, 20) == pytest.approx(lo)
    lrs = _lrs(cfg, steps_per_epoch=4, epochs=20)
    expected = [cfg.lr * lr_factor(cfg, e) for e in range(20)]
    assert lrs == pytest.approx(expected, rel=1e-9)
    assert all(a > b for a, b in zip(lrs[int(w):], lrs[int(w) + 1:]))  # strictly decaying after warmup
    assert lr_factor(cfg, w + 1) == pytest.approx(lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi / (20 - w))))


def test_flags_override_recipe_and_model_kwargs_merge():
    cfg = resolve(read_recipe("demo"), {"epochs": 3, "lr": 0.5, "model_kwargs": {"width": 0.25}})
    assert cfg.epochs == 3 and cfg.lr == 0.5
    assert cfg.model_kwargs == {"small_input": True, "width": 0.25}


@pytest.mark.parametrize("text, message", [
    ("epochs: [1,\n", "not valid YAML at line"),
    ("- just\n- a list\n", "must be a mapping"),
    ("epochz: 3\n", "unknown setting 'epochz'"),
    ("epochs: three\n", "'epochs' expects an integer"),
    ("optimizer: adam\n", "optimizer must be one of"),
    ("lr: -0.1\n", "lr must be positive"),
])
def test_bad_recipes_are_one_line_user_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        resolve(read_recipe(path), {}, str(path))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_recipe_name_lists_the_known_ones():
    with pytest.raises(UserError, match="googlenet_paper"):
        read_recipe("googlenet_papr")


@pytest.mark.parametrize("args, message", [
    (["--config", "{bad}"], "not valid YAML at line 2"),
    (["--config", "googlenet_papr"], "no recipe 'googlenet_papr'"),
    (["--set", "lr=-1"], "lr must be positive"),
    (["--set", "nope=1"], "unknown setting 'nope'"),
    (["--epochs", "abc"], "invalid int value"),
    (["--batch-size", "0"], "batch_size must be at least 1"),
    (["--model-kwarg", "width"], "--model-kwarg expects KEY=VALUE"),
])
def test_bad_config_or_flag_exits_2_with_one_line(tmp_path, capsys, args, message):
    from inceptorch.cli.main import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    args = [str(bad) if a == "{bad}" else a for a in args]
    try:
        rc = main(["train", "--model", "googlenet_bn", "--data", "digits", "--output", str(tmp_path / "run"), *args])
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    assert rc == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_bad_recipe_from_the_shell_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: 0.1\nepochs: [1,\n")
    proc = cli_in_process("train", "--config", str(bad), "--data", "digits")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "not valid YAML" in proc.stderr


SPELLINGS = ["1e-3", "1E-3", "1.0e-3", "1.e-3", "0.001", ".001", "+1e-3", "1e-03", "10e-4", " 1e-3 ", "0.000_1e1"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_float_spelling_is_a_number_in_yaml_and_on_the_command_line(tmp_path, spelling):
    from inceptorch.cli.train import parse_pairs

    path = tmp_path / "r.yaml"
    path.write_text(f"lr: {spelling}\nweight_decay: '{spelling}'\nbetas: [{spelling}, 0.999]\n")
    cfg = resolve(read_recipe(path), parse_pairs([f"momentum={spelling}", f"label_smoothing={spelling}"], "--set"))
    for value in (cfg.lr, cfg.weight_decay, cfg.betas[0], cfg.momentum, cfg.label_smoothing):
        assert isinstance(value, float) and value == pytest.approx(1e-3, rel=1e-12)


@pytest.mark.parametrize("value, message", [
    ("nan", "'lr' expects a finite number"), (".inf", "'lr' expects a finite number"),
    ("1e400", "'lr' expects a finite number"), ("1e-3x", "'lr' expects a number, not '1e-3x'"),
    ("true", "'lr' expects a number"),
])
def test_non_numbers_and_non_finite_values_are_refused(value, message):
    from inceptorch.cli.train import parse_pairs

    with pytest.raises(UserError) as info:
        resolve({}, parse_pairs([f"lr={value}"], "--set"))
    assert message in str(info.value) and "\n" not in str(info.value)


@settings(max_examples=200, deadline=None)
@given(x=st.floats(min_value=1e-4, max_value=1e6, allow_nan=False),  # above the fixed forms' resolution
       form=st.sampled_from(["{:e}", "{:E}", "{!r}", "{:.3e}", "{:g}", "{:.10f}"]))
def test_fuzz_float_text_is_read_as_python_reads_it(x, form):
    text = form.format(x)
    assert resolve({"lr": text}, {}).lr == float(text)  # as `--set lr=TEXT` hands it over when YAML keeps a string


def test_model_kwargs_are_checked_against_the_models_options_and_read_floats_too():
    from inceptorch.cli.train import parse_pairs

    cfg = resolve({"model": "googlenet_bn"}, {"model_kwargs": parse_pairs(["drop_rate=2e-1", "width=.5"], "")})
    assert cfg.model_kwargs == {"drop_rate": 0.2, "width": 0.5}
    for kwargs, message in (({"widht": 0.5}, "googlenet_bn takes no option 'widht'"),
                            ({"width": "wide"}, "option 'width' expects a number"),
                            ({"num_classes": -1}, "option 'num_classes' must be in [0, 100000]")):
        with pytest.raises(UserError, match=re.escape(message)):
            resolve({"model": "googlenet_bn"}, {"model_kwargs": kwargs})


def test_a_recipe_for_another_model_keeps_only_the_options_the_named_model_takes():
    """`--config demo --model maxout`: the demo's width applies, its small-input stem (GoogLeNet's) does not; an
    option the user gives for the wrong model is still an error."""
    from inceptorch.train.config import left_out_note, read_recipe

    demo = read_recipe("demo")
    maxout = resolve(demo, {"model": "maxout"})
    assert maxout.model_kwargs == {"width": 0.125}
    assert left_out_note(demo, maxout, "recipe demo") == \
        "recipe demo sets small_input for googlenet_bn; maxout does not take it, left out"
    assert left_out_note(demo, resolve(demo, {}), "recipe demo") is None
    assert resolve(demo, {"model": "googlenet"}).model_kwargs == {"small_input": True, "width": 0.125}
    with pytest.raises(UserError, match="maxout takes no option 'small_input'"):
        resolve(demo, {"model": "maxout", "model_kwargs": {"small_input": True}})
