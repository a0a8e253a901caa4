"""The inference path (fast.optimize) and the training step (fast.TrainStep)."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from _lively import lively
from inceptorch import create_model, get_model_cfg, list_models, numerics, optimize
from inceptorch.fast import fold_batchnorm
from inceptorch.fast.optimize import MergedBranches, PointwiseConvAsMatmul
from inceptorch.fast.train_step import TrainStep, enable_block_checkpointing, fast_optimizer
from inceptorch.fast.winograd import WinogradConv2d
from inceptorch.models.googlenet import GOOGLENET
from inceptorch.models.layers import Branches, ConvNormAct


def fp32_tolerance(model: nn.Module, out: Tensor) -> float:
    """3 u S sqrt(N) (inceptorch/numerics.py derives it): two fp32 evaluations of `model` differ by less on outputs
    of largest magnitude S. The weights here (`lively`) keep every layer's gain near 1, as the derivation needs."""
    return numerics.fp32_tolerance(model, out.abs().max().item())


def count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def count_convs(model: nn.Module) -> int:
    """Convolutions, the 1x1 ones that run as matrix products included."""
    return count(model, nn.Conv2d) + count(model, PointwiseConvAsMatmul)


def small_input(name: str) -> int:
    return get_model_cfg(name).min_input_size


def build(name: str, **kwargs) -> nn.Module:
    try:
        return create_model(name, num_classes=10, aux_logits=False, **kwargs)
    except TypeError:  # families without auxiliary heads
        return create_model(name, num_classes=10, **kwargs)


def test_the_export_tolerance_is_above_every_registered_network_s_bound():
    """`numerics.RELATIVE_TOLERANCE`, the export check's fixed share of S, is above 3 u sqrt(N) of every model."""
    for name in list_models():
        with torch.device("meta"):  # shapes only: N is read off the weights' shapes
            model = build(name)
        assert numerics.fp32_tolerance(model, 1.0) < numerics.RELATIVE_TOLERANCE, name


def test_fold_batchnorm_matches_conv_then_bn():
    conv, bn = nn.Conv2d(8, 16, 3, padding=1, bias=True), nn.BatchNorm2d(16, eps=1e-3)
    lively(nn.Sequential(conv, bn))
    x = torch.randn(2, 8, 9, 9)
    fused = fold_batchnorm(conv, bn)
    assert fused.bias is not None
    ref = bn(conv(x))
    torch.testing.assert_close(fused(x), ref, atol=fp32_tolerance(conv, ref), rtol=0)


@pytest.mark.parametrize("name", list_models())
def test_optimized_equals_plain(name):
    """Every registered model: eval-mode logits of the optimized copy equal the plain model's within 1e-5 (fp32)."""
    model = lively(build(name))
    size = small_input(name)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    fast = optimize(model)
    with torch.no_grad():
        ref, out = model(x), fast(x)
    assert ref.abs().max() > 0.1, "logits too small for the tolerance to mean anything"
    torch.testing.assert_close(out, ref, atol=fp32_tolerance(model, ref), rtol=0)
    assert count(fast, nn.BatchNorm2d) == 0
    assert model.training is False and count(model, nn.BatchNorm2d) == count(build(name), nn.BatchNorm2d)


@pytest.mark.parametrize("name", ["googlenet", "googlenet_bn"])
def test_googlenet_merges_three_1x1_convs_per_block(name):
    model = build(name)
    blocks = [m for m in model.modules() if isinstance(m, Branches)]
    fast = optimize(model)
    merged = [m for m in fast.modules() if isinstance(m, MergedBranches)]
    assert len(merged) == len(blocks) == 9
    # #1x1, #3x3 reduce and #5x5 reduce (Figure 2b) become one conv: two fewer convs per block.
    assert count_convs(fast) == count(model, nn.Conv2d) - 2 * len(blocks)
    stem = fast.inception3a.stem[0]
    assert (stem.in_channels, stem.out_channels, stem.kernel_size) == (192, 64 + 96 + 16, (1, 1))
    assert fast.inception3a.piece_index == [0, 1, 2, -1]  # the pool branch still reads the block input


@pytest.mark.parametrize("matmul", [True, False])
def test_pointwise_convs_run_as_matmuls_only_when_asked(matmul):
    """Asked for, every plain 1x1 conv becomes one GEMM; the 7x7, 3x3 and 5x5 convs stay.

    The default (Intel CPUs only) is tested in test_winograd.py."""
    model = lively(build("googlenet"))
    fast = optimize(model, matmul_1x1=matmul)
    plain_1x1 = [m for m in fast.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert (count(fast, PointwiseConvAsMatmul), len(plain_1x1)) == ((9 * 2 + 1, 0) if matmul else (0, 9 * 2 + 1))
    assert count_convs(fast) == count(model, nn.Conv2d) - 2 * 9
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)).contiguous(
        memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(fast(x), ref, atol=fp32_tolerance(model, ref), rtol=0)


def test_pointwise_matmul_keeps_channels_last_and_equals_the_conv():
    conv = nn.Conv2d(24, 40, 1)
    unit = PointwiseConvAsMatmul(conv)
    x = torch.randn(2, 24, 5, 7).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = unit(x)
        torch.testing.assert_close(out, conv(x), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(unit(x.contiguous()), conv(x), atol=1e-6, rtol=1e-6)  # NCHW input works too
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert (unit.in_channels, unit.out_channels, unit.kernel_size) == (24, 40, (1, 1))


def test_optimize_drops_aux_heads_and_leaves_the_original_alone():
    model = create_model("googlenet_bn", num_classes=10, aux_logits=True)
    fast = optimize(model)
    assert model.has_aux and not fast.has_aux
    assert count(model, MergedBranches) == 0 and model.inception3a.branch1.bn is not None
    assert not any(p.requires_grad for p in fast.parameters())


@pytest.mark.parametrize("name", ["googlenet", "googlenet_bn"])
def test_channels_last_survives_every_block(name):
    """An NCHW input comes out of every stage and every (merged) Inception block as channels_last."""
    fast = optimize(lively(build(name)))
    seen = {}

    def hook(module, inputs, output, key):
        seen[key] = output.is_contiguous(memory_format=torch.channels_last)

    for key in fast.stage_names:
        getattr(fast, key).register_forward_hook(lambda m, i, o, key=key: hook(m, i, o, key))
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        fast(x)
    assert set(seen) == set(fast.stage_names)
    assert all(seen.values()), [k for k, ok in seen.items() if not ok]


def test_optimized_model_compiles_without_graph_breaks():
    fast = optimize(lively(build("googlenet_bn", width=0.125, small_input=True)))
    explanation = torch._dynamo.explain(fast)(torch.randn(1, 3, 32, 32))
    assert explanation.graph_break_count == 0, explanation.break_reasons


# GoogLeNet's training graph with both auxiliary heads (taps after 4a and 4d) and an Inception module on each grid
# size: 4 of the 9 modules, the others being the same operators again for dynamo and AOTAutograd to trace.
TRAINING_SPEC = tuple(row for row in GOOGLENET if row.name in ("conv1", "inception3a", "maxpool3", "inception4a",
                                                                 "inception4d", "maxpool4", "inception5b"))


def tiny_training_model() -> nn.Module:
    return create_model("googlenet_bn", num_classes=10, width=0.125, small_input=True, aux_logits=True,
                        spec=TRAINING_SPEC)


@pytest.mark.parametrize("checkpoint", [False, True])
def test_training_step_has_no_graph_break(checkpoint):
    """The forward+loss that TrainStep compiles (aux heads on, bf16 autocast) is one graph."""
    step = TrainStep(tiny_training_model(), precision="bf16", checkpoint=checkpoint)
    x, y = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last), torch.tensor([1, 2])
    explanation = torch._dynamo.explain(step.forward_loss)(x, y)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_training_step_learns_and_keeps_channels_last():
    torch.manual_seed(0)
    model = tiny_training_model()
    step = TrainStep(model, lr=0.05)
    assert all(g.get("fused") or g.get("foreach") for g in step.optimizer.param_groups)
    assert model.conv1.conv.weight.is_contiguous(memory_format=torch.channels_last)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    losses = [step(x, y).item() for _ in range(4)]
    assert losses[-1] < losses[0]


def test_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain, ckpt = tiny_training_model(), tiny_training_model()
    ckpt.load_state_dict(plain.state_dict())
    assert enable_block_checkpointing(ckpt) == 4  # one per Inception module
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([3, 4])
    for m in (plain, ckpt):
        m.eval()  # dropout off: the two runs must see the same randomness-free forward
        nn.functional.cross_entropy(m(x), y).backward()
    torch.testing.assert_close(ckpt.conv1.conv.weight.grad, plain.conv1.conv.weight.grad)


def test_fast_optimizer_is_trains_own_fused_or_foreach():
    opt = fast_optimizer(nn.Linear(3, 2))
    assert isinstance(opt, torch.optim.SGD)
    assert all(g.get("fused") or g.get("foreach") for g in opt.param_groups)


@pytest.mark.slow
def test_compiled_training_step_matches_eager():
    """Compiled steps (fullgraph=True, forward and backward through AOTAutograd) give the eager step's losses.

    The aot_eager backend traces exactly what inductor receives but skips its C++ code generation, which takes
    minutes on a 2-core CI machine; `inceptorch bench --mode train --compile` runs the inductor path.
    """
    torch.manual_seed(0)
    a, b = tiny_training_model(), tiny_training_model()
    b.load_state_dict(a.state_dict())
    for m in (a, b):
        for d in m.modules():
            if isinstance(d, nn.Dropout):
                d.p = 0.0
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([5, 6])
    eager, compiled = TrainStep(a), TrainStep(b, compile=True, backend="aot_eager")
    for _ in range(2):
        torch.testing.assert_close(compiled(x, y), eager(x, y), atol=1e-4, rtol=1e-4)


def test_merge_leaves_a_block_without_siblings_alone():
    class OneOpening(Branches):
        def __init__(self):
            super().__init__()
            self.a = ConvNormAct(4, 4, 1, norm=False)
            self.b = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvNormAct(4, 4, 1, norm=False))

    from inceptorch.fast import merge_branches

    block = OneOpening()
    assert merge_branches(block) is block


def test_inference_compile_options_freeze_and_use_the_cpp_wrapper_on_the_cpu_only():
    from inceptorch.fast.compiled import inference_compile_options

    assert inference_compile_options(torch.device("cpu")) == {"freezing": True, "cpp_wrapper": True}
    assert inference_compile_options(torch.device("cuda")) == {"freezing": True, "cpp_wrapper": False}


def test_inputs_of_a_kind_already_compiled_skip_guard_evaluation(monkeypatch):
    """Dynamo's guards are skipped only for a kind of input seen before; autocast or train mode is a new kind."""
    import contextlib

    from inceptorch.fast import compiled as compiled_module

    assert compiled_module.CAN_SKIP_GUARDS  # torch 2.14 has set_stance(skip_guard_eval_unsafe=...)
    stances = []

    @contextlib.contextmanager
    def set_stance(**options):
        stances.append(options)
        yield

    monkeypatch.setattr(torch.compiler, "set_stance", set_stance)
    wrapper = compiled_module.CompiledForInference(nn.Linear(4, 2))
    wrapper.compiled = lambda x: x * 2  # stands in for the compiled model: what is tested is when guards are skipped
    x = torch.ones(3, 4)
    wrapper(x)
    assert stances == []  # the first call compiles, guards and all
    assert torch.equal(wrapper(x), x * 2) and stances == [{"skip_guard_eval_unsafe": True}]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        wrapper(x)
    wrapper.model.train()
    wrapper(x)
    wrapper(x[:2])
    assert len(stances) == 1 and len(wrapper.seen) == 4


# GoogLeNet (BN build) as its first conv, a stride-2 max pool, its first Inception module and its head: every kind of
# layer the optimized model has (3x3 convs as Winograd and direct, merged opening 1x1s, the pool branch, the concat,
# the head) and a fifth of the full network's kernels, whose code generation is what costs inductor's C++ backend a
# minute or more per compile. At 26 px the first conv's 26x26 map takes Winograd and the module's 13x13 maps the
# direct convolution (below `WinogradConv2d.min_size`): each Winograd conv's transforms cost about 5 s to generate.
FIRST_MODULE = tuple(row for row in GOOGLENET if row.name in ("conv1", "maxpool2", "inception3a"))
FIRST_MODULE_SIZE = 26


@pytest.mark.slow
def test_compile_for_inference_equals_the_optimized_and_the_plain_model():
    """Inductor with freezing (Winograd's weight transform folded at compile time), the C++ wrapper and no module
    guards computes the optimized model's logits, and the plain model's within one fp32 evaluation's error."""
    import copy

    from inceptorch import compile_for_inference

    plain = lively(build("googlenet_bn", width=0.125, small_input=True, spec=FIRST_MODULE))
    fast = optimize(plain, matmul_1x1=False)  # the 1x1s as convs (AMD's default); GEMMs are compiled below
    assert any(isinstance(m, MergedBranches) for m in fast.modules())
    winograd_maps = []  # per Winograd conv: whether its output map is in the sizes where it takes Winograd
    for m in fast.modules():
        if isinstance(m, WinogradConv2d):
            m.register_forward_hook(lambda m, inp, out: winograd_maps.append(m.min_size <= out.shape[-1] <= m.max_size))
    compiled = compile_for_inference(fast)
    size = FIRST_MODULE_SIZE
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3)).contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = fast(x)
        assert winograd_maps == [True, False, False]  # conv1 by Winograd; inception3a's 3x3s direct
        tol = fp32_tolerance(plain, ref)
        got = compiled(x)
        torch.testing.assert_close(got, ref, atol=tol, rtol=0)
        torch.testing.assert_close(compiled(x), ref, atol=tol, rtol=0)
        exact = copy.deepcopy(plain).double()(x.double())
    # One fp32 evaluation with Winograd convs against float64: 4 u S sqrt(N) (see test_winograd's fp32_tolerance).
    one_evaluation = numerics.fp32_tolerance(plain, exact.abs().max().item(), factor=4.0)
    torch.testing.assert_close(got.double(), exact, atol=one_evaluation, rtol=0)


class TwoOpenings(Branches):
    """An Inception module in miniature: two branches open with 1x1 convs (merged by `optimize`), one adds a 3x3."""

    def __init__(self):
        super().__init__()
        self.a = ConvNormAct(8, 8, 1)
        self.b = nn.Sequential(ConvNormAct(8, 4, 1), ConvNormAct(4, 8, 3))


@pytest.mark.slow
def test_compile_for_inference_runs_1x1s_as_gemms_and_compiles_again_for_a_new_shape():
    """The 1x1 convs as GEMMs (Intel's default), the merged opening among them; a batch size not seen before is
    compiled for (under its own guards), not run through the first graph."""
    from inceptorch import compile_for_inference

    model = lively(nn.Sequential(ConvNormAct(3, 8, 3), TwoOpenings()))
    fast = optimize(model, matmul_1x1=True)
    assert count(fast, PointwiseConvAsMatmul) == 1 and count(fast, WinogradConv2d) == 2  # the two 1x1s: one GEMM
    merged = next(m for m in fast.modules() if isinstance(m, MergedBranches))
    assert any(isinstance(m, PointwiseConvAsMatmul) for m in merged.modules())
    compiled = compile_for_inference(fast)
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(4)).contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = model(x)
        tol = fp32_tolerance(model, ref)
        torch.testing.assert_close(compiled(x), ref, atol=tol, rtol=0)
        torch.testing.assert_close(compiled(x[:1]), ref[:1], atol=tol, rtol=0)
    assert len(compiled.seen) == 2  # the settings were patched in for the two compiling calls only
