"""Code that runs in the DDP processes `torch.multiprocessing.spawn` starts for test_distributed.py.

Apart from the test module: a spawned process imports the module its function comes from, and the test module's
imports (the data pipeline, torchvision) took 4.1 s of each process's start against 1.9 s for these.
"""
from __future__ import annotations

import gc
from pathlib import Path

import torch


def nan_on_rank_1(rank: int, store_path: str, out_dir: str) -> None:
    """One DDP rank of `test_a_nan_on_one_rank_stops_every_rank_before_the_step`; writes what it saw."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from inceptorch import create_model
    from inceptorch.train import engine

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = DistributedDataParallel(create_model("lenet5", num_classes=3))
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    real, calls = engine.compute_loss, []

    def loss_with_a_nan(*args, **kwargs):  # rank 1's second batch diverges; rank 0's stays finite
        loss, logits = real(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if rank == 1 and len(calls) == 2 else loss), logits

    engine.compute_loss = loss_with_a_nan
    g = torch.Generator().manual_seed(rank)
    batches = [(torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(3)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    outcome = "finished"
    try:
        engine.train_one_epoch(engine.ForwardLoss(model), batches, optimizer, scheduler, device=torch.device("cpu"))
    except engine.NonFiniteLoss:
        outcome = f"stopped at batch {len(calls)}"
    after = model.module.state_dict()
    stepped_once = any(not torch.equal(before[k], after[k]) for k in before)
    finite = all(torch.isfinite(v).all() for v in after.values())
    Path(out_dir, f"rank{rank}.txt").write_text(f"{outcome}|{stepped_once}|{finite}")
    # Leave as `inceptorch.train.run.train` does: together, with DDP (which sits in reference cycles) freed before
    # the process group and not at interpreter exit, where gloo's threads sometimes aborted the process.
    dist.barrier()
    del model
    gc.collect()
    dist.destroy_process_group()
