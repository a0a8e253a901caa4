"""The study behind `inceptorch tune`: each trial is an ordinary training run in OUTPUT/trials/NNNN.

- Sampler: Optuna's TPE (Bergstra et al. 2011), seeded; its first trial is the recipe itself (the defaults when no
  --config), so the search starts from what the user would get without it.
- Pruner: each epoch's validation score is reported; the median rule (a trial below the median of earlier trials at
  the same epoch stops, after 2 epochs and 4 finished trials) or Hyperband (Li et al. 2018) stop bad trials early.
- Objective: balanced accuracy (mean per-class recall) when the validation classes are imbalanced or balancing
  is searched or asked for, else top-1; a trial's value is its best epoch's, as best.safetensors keeps it.
- Storage: OUTPUT/study.db (SQLite). Running the same command again continues the study: finished trials are
  kept, a trial cut short by Ctrl-C or a crash is run again.
- Time limit: no trial starts after --timeout, and a running one stops at its next epoch end (counted as pruned).
- Parallel: under torchrun every process is a worker on its own device (cuda:LOCAL_RANK, or a share of the CPU
  cores) taking trials from the shared study until --trials have ended.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..extras import require
from ..train.config import resolve
from .space import Dim, as_params, sample

STUDY_NAME = "inceptorch-tune"
ENDED = ("COMPLETE", "PRUNED")


@dataclass
class Search:
    recipe: dict            # the base recipe (--config), or {} for the defaults
    fixed: dict             # settings the command line fixes for every trial
    space: tuple[Dim, ...]  # what is searched
    output: Path
    trials: int
    timeout_s: float | None = None
    epochs: int | None = None  # a cap on each trial's epochs
    pruner: str = "median"
    seed: int = 0
    log: Callable[[str], None] = print


def objective_metric(val_targets: list[int], class_names: list[str], balancing: bool) -> str:
    from ..train.metrics import class_share_note

    return "balanced" if balancing or class_share_note(val_targets, class_names) is not None else "top1"


def make_pruner(name: str, max_epochs: int | None):
    optuna = require("optuna", "inceptorch tune")
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs or "auto", reduction_factor=3)
    return optuna.pruners.NopPruner()


def open_study(search: Search, describe: dict):
    """(study, storage): the study in OUTPUT/study.db, new or continued; a continued one must search the same
    thing."""
    optuna = require("optuna", "inceptorch tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the trials speak for themselves, one line each
    search.output.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{(search.output / 'study.db').resolve()}",
                                         engine_kwargs={"connect_args": {"timeout": 60}})
    sampler = optuna.samplers.TPESampler(seed=search.seed, n_startup_trials=min(10, max(3, search.trials // 3)))
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize", sampler=sampler,
                                pruner=make_pruner(search.pruner, search.epochs), load_if_exists=True)
    before = study.user_attrs.get("describe")
    if before is None:
        study.set_user_attr("describe", describe)
    elif before != describe:
        changed = sorted(k for k in set(before) | set(describe) if before.get(k) != describe.get(k))
        raise UserError(f"{search.output} holds a study of another search (it differs in {', '.join(changed)}); "
                        "choose another --output, or repeat the first command to continue it")
    return study, storage


def retry_interrupted(study, storage) -> int:
    """Queue once more the settings of trials that Ctrl-C, a crash or a kill cut short; returns how many."""
    optuna = require("optuna", "inceptorch tune")
    retried = set(study.user_attrs.get("retried", []))
    states = optuna.trial.TrialState
    again = [t for t in study.get_trials(deepcopy=False)
             if t.number not in retried and (t.state == states.RUNNING or
                                             (t.state == states.FAIL and t.user_attrs.get("cut_short")))]
    study_id = storage.get_study_id_from_name(STUDY_NAME)
    for t in again:
        if t.state == optuna.trial.TrialState.RUNNING:  # its process is gone: this command is the only worker
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    if again:
        study.set_user_attr("retried", sorted(retried | {t.number for t in again}))
    return len(again)


class TimeUp(Exception):
    """The search's time limit passed during a trial."""


def run_search(search: Search, metric: str, workers: int = 1) -> object:
    """Trials until --trials have ended (completed or pruned) or the time limit; returns the study."""
    optuna = require("optuna", "inceptorch tune")
    from ..train.run import Diverged, Interrupted, train

    describe = json.loads(json.dumps({  # as the study stores it (JSON): tuples become lists
        "model": search.fixed.get("model", search.recipe.get("model")),
        "data": str(search.fixed.get("data", search.recipe.get("data"))), "metric": metric,
        "space": [list(d) for d in search.space], "fixed": {k: str(v) for k, v in search.fixed.items()}}))
    study, storage = open_study(search, describe)
    if workers == 1:
        retried = retry_interrupted(study, storage)
        if retried:
            search.log(f"continuing the study in {search.output}: {retried} interrupted trial(s) run again")
    if not study.trials:  # the recipe's own settings first
        defaults = dataclasses.asdict(resolve(search.recipe, {**search.fixed, "output": "-"}))
        study.enqueue_trial(as_params(defaults, search.space), user_attrs={"baseline": True})
    deadline = time.monotonic() + search.timeout_s if search.timeout_s else math.inf

    def objective(trial) -> float:
        settings = sample(trial, search.space, search.fixed)
        folder = search.output / "trials" / f"{trial.number:04d}"
        if folder.exists():  # a retried trial's number is new; an old folder of this number is a stale one
            shutil.rmtree(folder)
        over = {**search.fixed, **settings, "output": str(folder), "best_metric": metric, "tensorboard": False}
        if search.epochs:
            over["epochs"] = search.epochs
        cfg = resolve(search.recipe, over)
        shown = ", ".join(f"{k} {_show(v)}" for k, v in settings.items())
        search.log(f"trial {trial.number}: {shown or 'the recipe as it is'}")

        def report(row: dict) -> None:
            score = max(row[f"val_{metric}"], row.get(f"ema_val_{metric}", -1.0) or -1.0)
            trial.report(score, row["epoch"])
            search.log(f"trial {trial.number} epoch {row['epoch']}: val {_metric_name(metric)} {score:.2f}% "
                       f"(train top-1 {row['train_top1']:.1f}%){'  ' + row['diagnosis'] if row['diagnosis'] else ''}")
            if time.monotonic() > deadline:
                raise TimeUp
            if trial.should_prune():
                raise optuna.TrialPruned(f"below the median of earlier trials at epoch {row['epoch']}")

        tic = time.monotonic()
        try:
            result = train(cfg, log=_quiet, progress=False, on_epoch=report)
        except TimeUp:
            trial.set_user_attr("stopped", "time limit")
            study.stop()
            raise optuna.TrialPruned("stopped at the time limit") from None
        except Diverged as exc:
            trial.set_user_attr("stopped", "diverged")
            raise optuna.TrialPruned(str(exc)) from None
        except (Interrupted, KeyboardInterrupt):
            trial.set_user_attr("cut_short", True)
            raise
        finally:
            trial.set_user_attr("seconds", round(time.monotonic() - tic, 1))
            _keep_only_what_matters(folder)
        trial.set_user_attr("top1", result.best.top1)
        trial.set_user_attr("balanced", result.best.balanced)
        trial.set_user_attr("best_epoch", result.best.epoch)
        trial.set_user_attr("epochs", result.config.epochs)
        trial.set_user_attr("diagnosis", result.diagnosis)
        return result.best.score

    def on_trial_end(study, trial) -> None:
        value = "pruned" if trial.value is None else f"{trial.value:.2f}%"
        why = trial.user_attrs.get("stopped", "")
        search.log(f"trial {trial.number} ended: {trial.state.name.lower()} {value}{f' ({why})' if why else ''}; "
                   f"best so far: trial {_best_number(study)}")
        _drop_weights_of_worse_trials(study, search.output)

    stop_at_count = optuna.study.MaxTrialsCallback(search.trials, states=tuple(
        getattr(optuna.trial.TrialState, s) for s in ENDED))
    with _single_process_trials():
        study.optimize(objective, timeout=search.timeout_s, callbacks=[on_trial_end, stop_at_count],
                       catch=(), gc_after_trial=True)
    return study


def _show(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _metric_name(metric: str) -> str:
    return "balanced accuracy" if metric == "balanced" else "top-1"


def _best_number(study) -> str:
    try:
        return f"{study.best_trial.number} ({study.best_value:.2f}%)"
    except ValueError:
        return "none yet"


def _quiet(message: str) -> None:
    """A trial's own log (its epoch lines are in its metrics.csv; the search prints one line per epoch)."""


# What a trial's folder keeps: its settings, its curves and the best trial's weights. `last.*` exist to resume a
# run, which a trial never is (a cut-short trial runs again from its start), and a study of 50 full-size trials
# would otherwise keep 50 x 3 checkpoints.
_RESUME_FILES = ("last.state.pt", "last.safetensors", "verified_images.json")


def _keep_only_what_matters(folder: Path) -> None:
    for name in _RESUME_FILES:
        (folder / name).unlink(missing_ok=True)


def _drop_weights_of_worse_trials(study, output: Path) -> None:
    try:
        best = study.best_trial.number
    except ValueError:
        return
    for weights in (output / "trials").glob("*/best.safetensors"):
        if weights.parent.name != f"{best:04d}":
            weights.unlink(missing_ok=True)


@contextmanager
def _single_process_trials():
    """Under torchrun, each process runs whole trials of its own: the training runs inside must not join a
    process group, and each takes its own GPU (cuda:LOCAL_RANK) or its share of the CPU cores."""
    from ..train.distributed import dist_env

    env = dist_env()
    if not env.enabled:
        yield
        return
    import torch

    saved = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    if torch.cuda.is_available():
        torch.cuda.set_device(env.local_rank)
    else:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
