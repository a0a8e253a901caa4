"""Winograd F(2x2, 3x3) for the compiled CPU inference path (fast/winograd.py)."""
from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inceptorch import create_model, numerics, optimize
from inceptorch.fast.optimize import PointwiseConvAsMatmul
from inceptorch.fast.winograd import WinogradConv2d, is_winograd_conv, winograd_conv3x3

# The module, not the function of the same name that inceptorch.fast exports.
optimize_module = importlib.import_module("inceptorch.fast.optimize")

def fp32_tolerance(model: nn.Module, exact: torch.Tensor) -> float:
    """How far one fp32 evaluation with Winograd convs may be from the float64 result: 4 u S sqrt(N).

    inceptorch/numerics.py derives 2.3 u S sqrt(N) for two fp32 evaluations, so one is within 1.6 u S sqrt(N) of the
    exact result. Winograd F(2x2, 3x3) adds the roundings of its input and output transforms (sums of up to 4 terms
    each); a factor 2 covers them (measured: as exact as the direct conv,
    `test_winograd_is_at_least_as_exact_as_the_direct_fp32_convolution`), and 4 rounds 3.3 up.
    For 8 -> 16 channels (N = 72, S = 6.5): 1.3e-5; measured 1.1e-6.
    """
    return numerics.fp32_tolerance(model, exact.abs().max().item(), factor=4.0)


def conv_case(cin: int, cout: int, padding: int, bias: bool, seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, 3, padding=padding, bias=bias)
    with torch.no_grad():
        conv.weight.mul_(3.0)  # outputs of order 1-10: well above the rounding errors the test bounds
    return conv.eval()


@pytest.mark.parametrize("n, cin, cout, h, w, padding, bias", [
    (1, 5, 7, 9, 12, 1, True),  # odd sizes: the last tiles run past the edge
    (2, 8, 16, 14, 14, 1, False),
    (1, 4, 6, 10, 7, 0, True),  # valid padding (Inception-v3's stem)
    (3, 3, 2, 3, 3, 0, True),  # one output pixel
])
@pytest.mark.parametrize("channels_last", [True, False])
def test_winograd_conv3x3_equals_the_direct_convolution(n, cin, cout, h, w, padding, bias, channels_last):
    conv = conv_case(cin, cout, padding, bias)
    x = torch.randn(n, cin, h, w, generator=torch.Generator().manual_seed(1))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        exact = F.conv2d(x.double(), conv.weight.double(), None if conv.bias is None else conv.bias.double(),
                         padding=padding)
        out = winograd_conv3x3(x, conv.weight, conv.bias, padding)
    assert out.shape == exact.shape and out.dtype == torch.float32
    assert exact.abs().max() > 1.0
    torch.testing.assert_close(out.double(), exact, atol=fp32_tolerance(conv, exact), rtol=0)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_winograd_is_at_least_as_exact_as_the_direct_fp32_convolution():
    """F(2x2, 3x3) sums 4 products per output element where direct sums 9: its error is not larger."""
    conv = conv_case(64, 96, 1, True)
    x = torch.randn(1, 64, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        exact = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
        err_winograd = (winograd_conv3x3(x, conv.weight, conv.bias, 1).double() - exact).abs().max()
        err_direct = (conv(x).double() - exact).abs().max()
    assert err_winograd <= 1.5 * err_direct, (err_winograd, err_direct)


def test_eager_runs_the_direct_convolution_with_the_same_weights():
    conv = conv_case(6, 10, 1, True)
    unit = WinogradConv2d(conv)
    assert unit.state_dict().keys() == conv.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(unit.state_dict().values(), conv.state_dict().values()))
    x = torch.randn(1, 6, 16, 16)
    with torch.no_grad():
        assert torch.equal(unit(x), conv(x))  # bit-identical: the same kernel ran
    assert "winograd=F(2x2, 3x3)" in repr(unit)


def test_only_plain_3x3_stride_1_convs_qualify():
    assert is_winograd_conv(nn.Conv2d(4, 4, 3, padding=1))
    assert is_winograd_conv(nn.Conv2d(4, 4, 3, padding=0))
    for conv in (nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 5, padding=2), nn.Conv2d(4, 4, 1),
                 nn.Conv2d(4, 4, (1, 3), padding=(0, 1)), nn.Conv2d(4, 4, 3, padding=(1, 0)),
                 nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.Conv2d(4, 4, 3, padding=2, dilation=2),
                 nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), WinogradConv2d(nn.Conv2d(4, 4, 3))):
        assert not is_winograd_conv(conv), conv


def conv_groups_in_compiled_graph(module: nn.Module, x: torch.Tensor) -> list[int]:
    """The `groups` of every convolution in the graph dynamo hands to the compiler (no inductor: fast)."""
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    with torch.no_grad():
        torch.compile(module, backend=record, fullgraph=True)(x)
    groups = []
    for node in graphs[0].graph.nodes:
        if node.op == "call_function" and node.target in (F.conv2d, torch.conv2d):
            groups.append(node.kwargs.get("groups", node.args[6] if len(node.args) > 6 else 1))
    return groups


def test_compiled_graph_takes_winograd_on_large_fp32_maps_only():
    """16 products as one grouped 1x1 conv (groups=16) on 14x14 to 56x56 maps; the direct conv outside, in bf16."""
    unit = WinogradConv2d(conv_case(8, 8, 1, True)).eval()
    assert conv_groups_in_compiled_graph(unit, torch.randn(1, 8, 14, 14)) == [16]
    assert conv_groups_in_compiled_graph(unit, torch.randn(1, 8, 13, 13)) == [1]  # below min_size
    assert conv_groups_in_compiled_graph(unit, torch.randn(1, 8, 56, 56)) == [16]
    assert conv_groups_in_compiled_graph(unit, torch.randn(1, 8, 57, 40)) == [1]  # above max_size
    assert conv_groups_in_compiled_graph(unit.to(torch.bfloat16), torch.randn(1, 8, 16, 16).bfloat16()) == [1]


def test_optimize_makes_the_3x3_convs_winograd_on_the_cpu_and_compiles_without_breaks():
    model = create_model("googlenet_bn", num_classes=10, aux_logits=False, width=0.125).eval()
    plain_3x3 = sum(is_winograd_conv(m) for m in model.modules())
    fast = optimize(model)
    assert plain_3x3 == 1 + 2 * 9  # conv3, and each block's 3x3 and (torchvision's) "5x5" that is 3x3
    assert sum(isinstance(m, WinogradConv2d) for m in fast.modules()) == plain_3x3
    assert not any(isinstance(m, WinogradConv2d) for m in optimize(model, winograd=False).modules())
    # At 112 px conv3 works on 28x28, blocks 3a-3b on 14x14 (Winograd), 4a-4e on 7x7 and 5a-5b on 4x4 (direct).
    groups = conv_groups_in_compiled_graph(fast, torch.randn(1, 3, 112, 112))
    assert groups.count(16) == 1 + 2 * 2
    assert groups.count(16) + sum(isinstance(m, PointwiseConvAsMatmul) for m in fast.modules()) + groups.count(1) \
        == sum(isinstance(m, (nn.Conv2d, PointwiseConvAsMatmul)) for m in fast.modules())


@pytest.mark.parametrize("vendor, expected", [("GenuineIntel", True), ("AuthenticAMD", False), ("", False)])
def test_1x1_convs_run_as_gemms_by_default_on_intel_cpus_only(monkeypatch, vendor, expected):
    """MKL's GEMM ran GoogLeNet's 1x1 products at half oneDNN's speed on AMD EPYC (BENCHMARKS.md)."""
    monkeypatch.setattr(optimize_module, "cpu_vendor", lambda: vendor)
    model = create_model("googlenet_bn", num_classes=10, aux_logits=False, width=0.125)
    assert any(isinstance(m, PointwiseConvAsMatmul) for m in optimize(model).modules()) is expected
    assert any(isinstance(m, PointwiseConvAsMatmul) for m in optimize(model, matmul_1x1=True).modules())
