"""The command line: summary for every model, listing, and one-line errors."""
import json
import subprocess
import sys

import pytest

from _cli import cli_in_process, one_line_error
from inceptorch import list_models
from inceptorch.cli.main import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inceptorch", *args], capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.mark.parametrize("name", list_models())
def test_summary_json_for_every_model(name, capsys):
    assert main(["summary", name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == name and data["total"]["macs"] > 0 and data["total"]["flops"] == 2 * data["total"]["macs"]
    assert data["total"]["params"] == sum(r["params"] for r in data["rows"])


def test_summary_table_labels_units(capsys):
    assert main(["summary", "googlenet"]) == 0
    out = capsys.readouterr().out
    assert "inception3a" in out and "MACs" in out and "FLOPs = 2 x MACs" in out
    assert "6,998,552" in out  # params of the paper build without aux heads


def test_summary_of_a_checkpoint_describes_the_model_as_trained(tmp_path, capsys):
    """The trained model's width, classes, stem and input size, not the registry's defaults; no training-only heads."""
    import dataclasses

    from inceptorch import create_model
    from inceptorch.weights.model_file import model_metadata, save_model_file

    model = create_model("googlenet_bn", num_classes=3, width=0.125, small_input=True, aux_logits=True)
    model.default_cfg = dataclasses.replace(model.default_cfg, input_size=48)  # as a run at --input-size 48 saves
    save_model_file(model, tmp_path / "m.safetensors", model_metadata(model, model.model_kwargs, ["a", "b", "c"]))
    assert main(["summary", "--checkpoint", str(tmp_path / "m.safetensors"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_size"] == 48 and data["rows"][-1]["output"] == [3]
    no_aux = create_model("googlenet_bn", num_classes=3, width=0.125, small_input=True, aux_logits=False)
    assert data["total"]["params"] == sum(p.numel() for p in no_aux.parameters())
    assert main(["summary", "googlenet_bn", "--num-classes", "3", "--width", "0.125", "--small-input",
                 "--input-size", "48", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == data["total"]  # the same model, described by name


@pytest.mark.parametrize("args, message", [
    (["summary", "lenet5", "--width", "0.5"], "lenet5 takes no option 'width' (its options:"),
    (["summary"], "give a model name (see `inceptorch models`) or --checkpoint"),
    (["summary", "googlenet", "--checkpoint", "x.safetensors"], "describes the model as it was trained; drop MODEL"),
])
def test_summary_option_errors_are_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_models_lists_every_model(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == list_models()
    bn = next(r for r in rows if r["model"] == "googlenet_bn")
    assert bn["params"] == 6_624_904 and bn["input_size"] == 224


@pytest.mark.parametrize("args, message", [
    (["summary", "resnet50"], "unknown model 'resnet50'"),
    (["summary", "googlenet", "--input-size", "16"], "below googlenet's minimum"),
    (["summary", "googlenet", "--input-size", "big"], "invalid int value"),
    (["no-such-command"], "invalid choice"),
])
def test_user_errors_are_one_line_without_traceback(args, message):
    result = cli_in_process(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["summary", "resnet50"], "inceptorch summary: error: unknown model 'resnet50'"),  # a UserError, caught by main
    (["no-such-command"], "inceptorch: error: argument COMMAND: invalid choice"),  # argparse's own exit
])
def test_the_real_entry_point_exits_2_with_one_line(args, message):
    """`python -m inceptorch`, a new interpreter: what every other CLI test runs in process (tests/_cli.py)."""
    result = run_cli(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_option_the_subcommand_lacks_is_named_with_the_subcommand(capsys):
    """argparse reports leftovers from the top-level parser ("inceptorch: error:"); they belong to the subcommand."""
    with pytest.raises(SystemExit) as info:
        main(["train", "--epohcs", "3"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("inceptorch train: error: unrecognized arguments: --epohcs 3; did you mean --epochs or "
                          "--freeze-epochs? (see inceptorch train --help)")


@pytest.mark.parametrize("args", [["train", "--epoch", "3"], ["train", "--lr-f", "1"],
                                  ["eval", "--data", "d", "--check", "x"], ["demo", "--epoch=1"]])
def test_an_abbreviated_option_is_not_taken_for_the_option_it_begins(args):
    """argparse's allow_abbrev took `--epoch 3` for --epochs: a typo of another option went unnoticed."""
    from inceptorch.cli.main import build_parser

    _, extra = build_parser().parse_known_args(args)
    assert extra == [a for a in args[1:] if a not in ("--data", "d")]


@pytest.mark.parametrize("args, message", [
    (["train", "--epoch", "3"], "unrecognized arguments: --epoch 3; did you mean --epochs or --freeze-epochs?"),
    (["train", "--epoch=3", "--lr-fnd", "3"], "--epoch: did you mean --epochs or --freeze-epochs?; --lr-fnd: did"),
    (["trian"], "invalid choice: 'trian'; did you mean train? (choose from"),
    (["--vers"], "inceptorch: error: unrecognized arguments: --vers; did you mean --version?"),
    (["train", "--aug", "small-data"], "invalid choice: 'small-data'; did you mean small_data? (choose from"),
    (["summary", "googlenet_nb"], "unknown model 'googlenet_nb'; did you mean googlenet_bn, googlenet?"),
    (["train", "--model", "lenet5", "--set", "epoch=3"],
     "'epoch' in command line; did you mean epochs or step_epochs?"),
    (["train", "--config", "finetun"], "; did you mean finetune?"),
    (["train", "--model", "googlenet_bn", "--model-kwarg", "widht=0.5"], "'widht' (did you mean width? its options:"),
])
def test_a_typo_is_one_line_naming_what_was_meant(args, message):
    result = cli_in_process(*args)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("kwarg, choices", [("init=xavier", "init must be one of kaiming, kaiming_fan_out, "
                                                            "trunc_normal, not 'xavier'"),
                                             ("head=max", "head must be one of avg, fc, not 'max'")])
def test_a_model_option_value_the_builder_refuses_is_one_line(tmp_path, kwarg, choices):
    result = cli_in_process("train", "--model", "googlenet_bn", "--data", "digits", "--model-kwarg", kwarg,
                            "--epochs", "1", "--output", tmp_path / "run")
    assert choices in one_line_error(result)


def test_counts_read_as_english():
    from inceptorch.text import count

    assert [count(1, "class"), count(3, "class"), count(1, "epoch"), count(3, "epoch"), count(0, "image")] == \
        ["1 class", "3 classes", "1 epoch", "3 epochs", "0 images"]


def test_output_cut_off_by_a_closed_pipe_is_no_traceback():
    """`inceptorch eval ... | head -1`: the reader closes the pipe early; the command stops quietly with 141. The
    command here writes 1 MB, far past what a pipe buffers, so the write does meet the closed pipe."""
    code = ("import sys\nimport inceptorch.cli.models as models\nfrom inceptorch.cli.main import main\n"
            "models.run = lambda args: [print('x' * 99) for _ in range(10_000)] and 0\nsys.exit(main(['models']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err
