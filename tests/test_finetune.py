"""Fine-tuning from a model file of our own: the architecture it records, the frozen trunk, and what the log says."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from _cli import cli_in_process, one_line_error
from _train_helpers import make_jpeg_folder
from inceptorch.models import create_model
from inceptorch.weights.model_file import model_metadata, read_metadata, save_model_file

pytestmark = pytest.mark.usefixtures("one_thread")

# What TINY in _train_helpers.py gives by flags, left out here: the file brings it.
QUIET = ["--no-progress", "--set", "tensorboard=false", "--set", "plot=false"]
SHORT = ["--epochs", "1", "--batch-size", "4", *QUIET]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_jpeg_folder(tmp_path_factory.mktemp("data") / "colours")


@pytest.fixture(scope="module")
def own_file(tmp_path_factory) -> Path:
    """A run folder's model file: a small-input GoogLeNet-BN at width 0.0625, trained on two other classes."""
    kwargs = {"width": 0.0625, "small_input": True, "num_classes": 2}
    model = create_model("googlenet_bn", **kwargs)
    run = tmp_path_factory.mktemp("runs") / "photos"
    run.mkdir()
    save_model_file(model, run / "best.safetensors", model_metadata(model, kwargs, ["china", "flower"]))
    return run / "best.safetensors"


@pytest.mark.parametrize("config", [[], ["--config", "finetune"]])
@pytest.mark.parametrize("as_folder", [False, True])
def test_fine_tuning_from_our_own_file_builds_the_architecture_it_records(folder, own_file, tmp_path, config,
                                                                          as_folder):
    """Without --model, --width or --small-input: the file's model and builder options, not the registry's."""
    run = tmp_path / "run"
    pretrained = own_file.parent if as_folder else own_file
    proc = cli_in_process("train", *config, "--pretrained", pretrained, "--data", folder, "--output", run, *SHORT)
    assert proc.returncode == 0, proc.stderr
    meta = read_metadata(run / "last.safetensors")
    assert meta["model"] == "googlenet_bn"
    assert (meta["model_kwargs"]["width"], meta["model_kwargs"]["small_input"]) == (0.0625, True)
    assert meta["class_names"] == ["blue", "green", "red"]  # the data's classes, the file's two reset
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"] == "googlenet_bn" and saved["model_kwargs"] == {"width": 0.0625, "small_input": True}


@pytest.mark.parametrize("flags, named", [
    (["--width", "0.125"], "--width 0.125"),
    (["--model", "googlenet_bn", "--model-kwarg", "small_input=false"], "--model-kwarg small_input=false"),
    (["--model", "lenet5"], "--model lenet5"),
])
def test_a_flag_that_contradicts_the_file_is_one_line_naming_both(folder, own_file, tmp_path, flags, named):
    proc = cli_in_process("train", "--config", "finetune", "--pretrained", own_file, *flags, "--data", folder,
                          "--output", tmp_path / "run", *SHORT)
    err = one_line_error(proc)
    assert named in err and str(own_file) in err and "width 0.0625, small_input true" in err, err
    assert not (tmp_path / "run").exists()


def test_flags_that_agree_with_the_file_and_head_options_are_taken(folder, own_file, tmp_path):
    run = tmp_path / "run"
    proc = cli_in_process("train", "--model", "googlenet_bn", "--width", "0.0625", "--small-input", "--no-aux",
                          "--model-kwarg", "drop_rate=0.5", "--pretrained", own_file, "--data", folder,
                          "--output", run, *SHORT)
    assert proc.returncode == 0, proc.stderr
    kwargs = read_metadata(run / "last.safetensors")["model_kwargs"]
    assert (kwargs["width"], kwargs["small_input"], kwargs["aux_logits"], kwargs["drop_rate"]) == \
        (0.0625, True, False, 0.5)


def test_a_recipes_builder_options_give_way_to_the_files_with_a_note(folder, own_file, tmp_path):
    """The demo recipe's width 0.125 would not fit the file's 0.0625 weights."""
    run = tmp_path / "run"
    proc = cli_in_process("train", "--config", "demo", "--pretrained", own_file, "--data", folder, "--output", run,
                          *SHORT)
    assert proc.returncode == 0, proc.stderr
    assert read_metadata(run / "last.safetensors")["model_kwargs"]["width"] == 0.0625
    note = next(line for line in proc.stdout.splitlines() if line.startswith("recipe demo sets"))
    assert "width 0.125" in note and f"{own_file} holds, a googlenet_bn with width 0.0625" in note, note


def _file_with_classes(path: Path, classes: list[str]) -> Path:
    kwargs = {"width": 0.0625, "small_input": True, "num_classes": len(classes)}
    model = create_model("googlenet_bn", **kwargs)
    torch.nn.init.constant_(model.fc.weight, 0.5)  # unlike any initialisation, so that a kept one is known
    save_model_file(model, path, model_metadata(model, kwargs, classes))
    return path


@pytest.mark.parametrize("classes, kept", [(["blue", "green", "red"], True), (["cat", "dog", "eel"], False)])
def test_classifiers_are_kept_only_for_the_very_classes_they_name(folder, tmp_path, classes, kept):
    """A run of ours trained on to other settings keeps its classifiers, and with nothing new there is nothing to
    freeze (the frozen epoch trained no parameter at all and stopped in a traceback); three other classes get new
    classifiers, although the shapes would fit."""
    weights = _file_with_classes(tmp_path / "three.safetensors", classes)
    run = tmp_path / "run"
    proc = cli_in_process("train", "--config", "finetune", "--pretrained", weights, "--data", folder, "--output", run,
                          *SHORT)
    assert proc.returncode == 0, proc.stderr
    before, after = load_file(str(weights)), load_file(str(run / "last.safetensors"))
    assert torch.allclose(before["fc.weight"], after["fc.weight"], atol=1e-2) == kept
    assert ("classifiers already name these 3 classes, in this order: kept" in proc.stdout) == kept
    assert ("no layer is new, so none is frozen" in proc.stdout) == kept
    # Frozen or not: the trunk moved only where it learns in epoch 1.
    assert torch.equal(before["conv1.conv.weight"], after["conv1.conv.weight"]) != kept


def _bn_statistics(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


@pytest.mark.parametrize("precise_bn", ["auto", "always"])
def test_a_frozen_trunk_keeps_its_batchnorm_statistics_under_precise_bn(folder, own_file, tmp_path, precise_bn):
    """precise_bn auto (the default) recomputes young statistics before each validation; the file's are young
    (never updated), yet while the trunk is frozen they stay the file's, in the raw and the averaged weights."""
    run = tmp_path / "run"
    proc = cli_in_process("train", "--config", "finetune", "--pretrained", own_file, "--data", folder,
                          "--output", run, "--set", "ema_decay=0.5", "--set", f"precise_bn={precise_bn}", *SHORT)
    assert proc.returncode == 0, proc.stderr
    start = _bn_statistics(load_file(str(own_file)))
    assert len(start) > 100
    for name in ("last.safetensors", "best.safetensors"):
        after = load_file(str(run / name))
        changed = [k for k in start if not torch.equal(start[k], after[k])]
        assert not changed, f"{name}: {len(changed)} BN statistics changed, e.g. {changed[:3]}"


def test_the_log_says_when_the_trunk_is_frozen_and_when_it_is_unfrozen(folder, own_file, tmp_path):
    run = tmp_path / "run"
    proc = cli_in_process("train", "--config", "finetune", "--pretrained", own_file, "--data", folder,
                          "--output", run, *SHORT, "--epochs", "3", "--freeze-epochs", "2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    frozen = next(i for i, line in enumerate(lines) if line.startswith("trunk frozen for epochs 1-2 of 3: only the "
                                                                      "new layers learn"))
    unfrozen = next(i for i, line in enumerate(lines) if line.startswith("epoch 3: trunk unfrozen: the pretrained "
                                                                        "layers learn from here on, at lr x "
                                                                        "trunk_lr_scale (0.1)"))
    epochs = [i for i, line in enumerate(lines) if re.match(r"epoch \d/3  ", line)]
    assert frozen < epochs[0] < epochs[1] < unfrozen < epochs[2]
    # Each parameter group's lr, labelled; the trunk's marked frozen in the epochs that did not train it.
    rates = [re.search(r"  lr (\S+) \(new layers\) (\S+) \(pretrained(, frozen)?\)  ", lines[i]) for i in epochs]
    assert [bool(m.group(3)) for m in rates] == [True, True, False]
    assert all(float(m.group(2)) == pytest.approx(0.1 * float(m.group(1)), rel=1e-3) for m in rates)


def test_a_run_frozen_throughout_and_its_resume_say_which_epochs_are_left(folder, own_file, tmp_path):
    run = tmp_path / "run"
    proc = cli_in_process("train", "--config", "finetune", "--pretrained", own_file, "--data", folder,
                          "--output", run, *SHORT, "--freeze-epochs", "2")
    assert proc.returncode == 0, proc.stderr
    assert "trunk frozen for epoch 1 of 1: only the new layers learn" in proc.stdout
    assert "from epoch" not in proc.stdout and "unfrozen" not in proc.stdout
    resumed = cli_in_process("train", "--resume", run, "--epochs", "3", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "trunk frozen for epoch 2 of 3: only the new layers learn" in resumed.stdout
    assert "from epoch 3 on they learn too, at lr x trunk_lr_scale (0.1)" in resumed.stdout
    assert "epoch 3: trunk unfrozen" in resumed.stdout


@pytest.mark.parametrize("pretrained, message", [
    ("{tmp}/runs/nope", "weights file not found: {tmp}/runs/nope"),
    ("{tmp}/weights.pth", ("--pretrained {tmp}/weights.pth is not an inceptorch model file or run folder, so it does "
                          "not say which model its weights are for: give --model")),
    ("imagenet", "--pretrained imagenet needs --model: which model's weights?"),
])
def test_pretrained_weights_that_do_not_name_their_model_ask_for_model(folder, tmp_path, pretrained, message):
    """Each said `missing setting: model`, although the first is a typo of a path and the others name no model."""
    torch.save(create_model("lenet5", num_classes=2).state_dict(), tmp_path / "weights.pth")
    proc = cli_in_process("train", "--pretrained", pretrained.format(tmp=tmp_path), "--data", folder,
                          "--output", tmp_path / "run", *SHORT)
    assert message.format(tmp=tmp_path) in one_line_error(proc)
