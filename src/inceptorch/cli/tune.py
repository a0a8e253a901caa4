"""`inceptorch tune`: search the recipe (lr, weight decay, optimizer, augmentation, input size, class balancing,
label smoothing) with Optuna, stopping bad trials early; write the best trial as a recipe."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..errors import UserError
from ._data_flags import apply_data_flags
from .train import add_train_options, overrides_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tune", help="recipe search with Optuna: trials pruned early, the study resumable, the best as a recipe",
        description="Each trial trains the model with one recipe (train's options fix settings for every trial; "
                    "the rest is searched); per-epoch validation feeds a pruner that stops bad trials early. The "
                    "study lives in OUTPUT/study.db: the same command again continues it. Writes trials.csv, "
                    "history.png, importance.png and best.yaml (inceptorch train --config OUTPUT/best.yaml). Under "
                    "torchrun each process runs trials of its own, in parallel.")
    add_train_options(p)
    p.add_argument("--trials", type=int, default=20, help="trials to end (completed or pruned) in all (default 20)")
    p.add_argument("--timeout", type=float, default=None, metavar="MIN",
                   help="stop after this many minutes: no new trial starts, a running one stops at its epoch end")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median",
                   help="how bad trials stop early (default median: below the median of earlier trials at the same "
                        "epoch, from epoch 3 on)")
    p.add_argument("--space", default=None, metavar="FILE.yaml",
                   help="the search space instead of the default one, e.g. 'lr: {log: [1e-4, 1e-2]}'")
    p.add_argument("--output", default="runs/tune", metavar="DIR", help="the study and its trials (default runs/tune)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..extras import require
    from ..models import create_model
    from ..train.config import from_model_file, read_recipe, resolve
    from ..train.distributed import dist_env
    from ..train.run import Interrupted
    from ..tune.report import print_table, trial_rows, write_report
    from ..tune.search import Search, objective_metric, run_search
    from ..tune.space import default_space, read_space, without

    require("optuna", "inceptorch tune")
    apply_data_flags(args)
    if args.trials < 1 or (args.timeout is not None and not args.timeout > 0):
        raise UserError(f"--trials must be at least 1 and --timeout positive, not {args.trials} and {args.timeout}")
    fixed = overrides_from_args(args)
    if fixed.get("lr") == "auto":
        raise UserError("tune searches the lr; drop --lr auto")
    epochs = fixed.pop("epochs", None)
    if epochs == "auto":
        epochs = None
    recipe, where = (read_recipe(args.config), args.config) if args.config else ({}, "config")
    recipe, fixed, notes = from_model_file(recipe, fixed, f"recipe {where}")
    for note in notes:
        print(note)
    cfg = resolve(recipe, {**fixed, "output": args.output}, where)  # every fixed setting checked before trial 1
    if not cfg.model or not cfg.data:
        raise UserError("tune needs --model and --data (or a recipe that names them)")
    base_size = cfg.input_size or create_model(cfg.model, **cfg.model_kwargs, num_classes=2).default_cfg.input_size
    space = without(read_space(args.space) if args.space else default_space(base_size), fixed)
    if not space:
        raise UserError("every searched setting is fixed on the command line: nothing is left to search")
    from ..data.datasets import build_dataset

    val = build_dataset(cfg.data, "val", cfg.val_split)
    searched = any(d.setting == "class_balance" for d in space)
    metric = objective_metric(val.targets, val.class_names, cfg.class_balance != "none" or searched)
    why = ("the classes are imbalanced" if objective_metric(val.targets, val.class_names, False) == "balanced" else
           "class balancing is searched" if searched else f"--class-balance {cfg.class_balance}")
    env = dist_env()
    # Under torchrun every worker reports its own trials, each line marked with its rank.
    log = (lambda message: print(f"[worker {env.rank}] {message}", flush=True)) if env.enabled else print
    search = Search(recipe, {**fixed, "model": cfg.model, "data": cfg.data}, space, Path(cfg.output), args.trials,
                    args.timeout * 60 if args.timeout else None, epochs, args.pruner, cfg.seed, log)
    if env.is_main:  # what is searched, said once
        name = f"balanced accuracy ({why})" if metric == "balanced" else "top-1"
        print(f"searching {', '.join(sorted({d.setting for d in space}))} for {cfg.model} on {cfg.data}: "
              f"{args.trials} trials{f', at most {args.timeout:g} min' if args.timeout else ''}"
              f"{f', each at most {epochs} epochs' if epochs else ''}; objective val {name}; "
              f"{args.pruner} pruning; study in {search.output / 'study.db'}"
              + (f"; {env.world_size} workers" if env.enabled else ""))
    command = "inceptorch " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["tune"] else \
        "inceptorch tune"
    try:
        study = run_search(search, metric, workers=env.world_size)
    except Interrupted as exc:
        print(f"inceptorch tune: {exc.args[0].split(':')[0]}: the study is saved in {search.output / 'study.db'}; "
              "the same command continues it (the interrupted trial runs again)", file=sys.stderr)
        return exc.exit_code
    rows = trial_rows(study, space)
    if rows:
        print_table(rows, metric)
    for line in write_report(study, search, metric, command):
        print(line)
    return 0
