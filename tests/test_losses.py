"""labelaudit.losses against torch's own losses and the direct formulas."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
F = torch.nn.functional

from labelaudit.losses import (  # noqa: E402
    AsymmetricLoss,
    FocalLoss,
    LogitAdjustedCrossEntropy,
    class_balanced_weights,
)


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 5, generator=generator) * 3
    targets = torch.randint(0, 5, (64,), generator=generator)
    multi = (torch.rand(64, 5, generator=generator) < 0.3).float()
    return logits, targets, multi


def test_focal_with_gamma_zero_is_cross_entropy(data) -> None:
    logits, targets, _ = data
    torch.testing.assert_close(
        FocalLoss(gamma=0.0)(logits, targets), F.cross_entropy(logits, targets)
    )
    weight = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0])
    torch.testing.assert_close(
        FocalLoss(gamma=0.0, weight=weight)(logits, targets),
        F.cross_entropy(logits, targets, weight=weight),
    )


def test_focal_matches_the_formula(data) -> None:
    logits, targets, _ = data
    alpha = torch.tensor([0.25, 0.5, 0.75, 1.0, 0.1])
    got = FocalLoss(gamma=2.0, alpha=alpha, reduction="none")(logits, targets)
    p = torch.softmax(logits, dim=-1)[torch.arange(64), targets]
    expected = -alpha[targets] * (1 - p) ** 2 * torch.log(p)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_asymmetric_with_zero_gammas_and_clip_is_bce(data) -> None:
    logits, _, multi = data
    got = AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=0.0)(logits, multi)
    torch.testing.assert_close(got, F.binary_cross_entropy_with_logits(logits, multi))


def test_asymmetric_matches_the_formula(data) -> None:
    logits, _, multi = data
    got = AsymmetricLoss(gamma_pos=1.0, gamma_neg=4.0, clip=0.05, reduction="none")(logits, multi)
    p = torch.sigmoid(logits.double())
    p_m = (p - 0.05).clamp(min=0)
    expected = -multi * (1 - p) * torch.log(p) - (1 - multi) * p_m**4 * torch.log(1 - p_m)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-6)


def test_class_balanced_weights_formula() -> None:
    counts = [100, 10, 1, 0]
    weights = class_balanced_weights(counts, beta=0.99)
    raw = [(1 - 0.99) / (1 - 0.99**n) for n in counts[:3]]
    scale = 3 / sum(raw)
    assert weights.tolist() == pytest.approx([r * scale for r in raw] + [0.0], rel=1e-6)
    assert weights.sum().item() == pytest.approx(3.0)


def test_logit_adjusted_cross_entropy(data) -> None:
    logits, targets, _ = data
    counts = torch.tensor([50.0, 30.0, 10.0, 5.0, 5.0])
    got = LogitAdjustedCrossEntropy(counts, tau=1.0)(logits, targets)
    expected = F.cross_entropy(logits + torch.log(counts / counts.sum()), targets)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finite_gradients_at_extreme_logits(dtype) -> None:
    logits = torch.tensor(
        [[80.0, -80.0, 0.0], [-90.0, 90.0, 30.0]], dtype=dtype, requires_grad=True
    )
    targets = torch.tensor([1, 0])
    multi = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]], dtype=dtype)
    losses = [
        FocalLoss(gamma=2.0)(logits, targets),
        AsymmetricLoss()(logits, multi),
        AsymmetricLoss(gamma_neg=0.0, clip=0.0)(logits, multi),
        LogitAdjustedCrossEntropy([10, 1, 1])(logits, targets),
    ]
    for loss in losses:
        assert math.isfinite(loss.item())
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(grad).all()
        assert grad.dtype == dtype


def test_bf16_inputs_give_the_float32_value(data) -> None:
    logits, targets, multi = data
    low = logits.to(torch.bfloat16)
    assert FocalLoss()(low, targets).item() == pytest.approx(
        FocalLoss()(low.float(), targets).item(), rel=1e-6
    )
    assert AsymmetricLoss()(low, multi).item() == pytest.approx(
        AsymmetricLoss()(low.float(), multi).item(), rel=1e-6
    )


def test_import_labelaudit_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, labelaudit, labelaudit.api; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_torch_the_error_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from labelaudit.errors import MissingDependencyError\n"
        "try:\n    import labelaudit.losses\nexcept MissingDependencyError as e:\n    print(e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'labelaudit[torch]'" in out.stdout
