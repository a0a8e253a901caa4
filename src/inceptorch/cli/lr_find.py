"""`inceptorch lr-find`: the learning-rate range test on a model and data, as `train` would run them."""
from __future__ import annotations

from ..errors import UserError
from ._data_flags import apply_data_flags
from .train import add_train_options, overrides_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lr-find", help="learning-rate range test: sweep the lr over a few hundred steps, plot the loss, suggest an lr",
        description="Trains from the run's initial weights while the learning rate grows exponentially, writes "
                    "OUTPUT/lr_find.png and lr_find.csv, and prints the suggested lr (fastai's valley rule). Takes "
                    "train's options: the same model, data, recipe, augmentation and batch size are swept.")
    add_train_options(p)
    p.add_argument("--output", default="runs/lr-find", metavar="DIR", help="where the plot and table go")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps of the sweep (default 100)")
    p.add_argument("--start-lr", type=float, default=None, help="first lr of the sweep (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=None, help="last lr, unless the loss diverges first (default 10)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..train.config import from_model_file, read_recipe, resolve
    from ..train.lr_find import LR_FIND_END, LR_FIND_START, LR_FIND_STEPS, write_lr_find
    from ..train.run import Trainer

    apply_data_flags(args)
    steps = LR_FIND_STEPS if args.steps is None else args.steps
    start = LR_FIND_START if args.start_lr is None else args.start_lr
    end = LR_FIND_END if args.end_lr is None else args.end_lr
    if steps < 5 or not 0 < start < end:
        raise UserError(f"the sweep needs at least 5 steps and 0 < --start-lr < --end-lr, not {steps} steps from "
                        f"{start:g} to {end:g}")
    over = overrides_from_args(args)
    if over.get("lr") == "auto":
        raise UserError("lr-find finds the lr; drop --lr auto (train --lr auto runs this sweep itself)")
    recipe, where = (read_recipe(args.config), args.config) if args.config else ({}, "config")
    recipe, over, notes = from_model_file(recipe, over, f"recipe {where}")
    for note in notes:
        print(note)
    cfg = resolve(recipe, {**over, "output": args.output, "tensorboard": False, "plot": False}, where)
    trainer = Trainer(cfg, progress=False)
    try:
        print(f"sweeping the lr from {start:g} to {end:g} over {steps} steps: {cfg.model} on "
              f"{len(trainer.train_base)} training images, batch {trainer.loaders.batch_size}, {cfg.optimizer}")
        result = trainer.find_lr(start, end, steps)
        write_lr_find(result, trainer.run_dir, f"{cfg.model} on {cfg.data}", print)
    finally:
        if trainer.lock is not None:
            trainer.lock.release()
    print(result.summary())
    picture = trainer.run_dir / "lr_find.png"
    print(f"curve: {picture if picture.is_file() else trainer.run_dir / 'lr_find.csv'}")
    print(f"train with it: inceptorch train ... --lr {result.suggestion:.2g}   (or --lr auto, which runs this sweep "
          "first)")
    return 0
