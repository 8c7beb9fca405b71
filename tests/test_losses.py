"""The GAN pieces shared by the adversarial and mixing methods, checked against values known in closed form."""

import math

import pytest
import torch
from torch import nn

from studio.methods.losses import (
    PatchCritic,
    entropy,
    frozen,
    gradient_penalty,
    image_scores,
    nonsaturating_discriminator_loss,
    nonsaturating_generator_loss,
    patch_layers,
    uniform_cross_entropy,
    wgan_critic_loss,
    wgan_generator_loss,
)


@pytest.mark.parametrize("norm", [0.3, 1.0, 2.5])
def test_gradient_penalty_of_a_linear_critic_is_exact(norm: float) -> None:
    """f(x) = w.x has gradient w everywhere, so the penalty is (|w| - 1)^2 whatever points are drawn."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3 * 4 * 4, generator=gen, dtype=torch.float64)
    w = w / w.norm() * norm
    real = torch.randn(5, 3, 4, 4, generator=gen, dtype=torch.float64)
    fake = torch.randn(5, 3, 4, 4, generator=gen, dtype=torch.float64)
    penalty = gradient_penalty(lambda x: x.flatten(1) @ w, real, fake, generator=gen)
    assert penalty.item() == pytest.approx((norm - 1.0) ** 2, abs=1e-12)


def test_gradient_penalty_scores_a_patch_map_by_its_mean() -> None:
    """A 1x1-conv patch critic v.x(pixel) averaged over H*W pixels has gradient norm |v| / sqrt(H*W)."""
    critic = nn.Conv2d(3, 1, 1, bias=True).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([3.0, 4.0, 12.0], dtype=torch.float64).view(1, 3, 1, 1))  # |v| = 13
    real = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    fake = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    expected = (13.0 / math.sqrt(64) - 1.0) ** 2
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(expected, abs=1e-12)


def test_gradient_penalty_trains_the_critic_but_not_the_generator() -> None:
    critic = PatchCritic(3, width=4, layers=2)
    fake_source = torch.randn(2, 3, 16, 16, requires_grad=True)
    penalty = gradient_penalty(critic, torch.randn(2, 3, 16, 16), fake_source * 2)
    penalty.backward()
    weights = [p for p in critic.parameters() if p.dim() > 1]  # biases do not change the input gradient
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in weights)
    assert fake_source.grad is None


def test_gradient_penalty_rejects_mismatched_batches() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        gradient_penalty(lambda x: x.sum(dim=(1, 2, 3)), torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4))


def test_wgan_losses() -> None:
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([[0.5], [-0.5]])
    assert wgan_critic_loss(real, fake).item() == pytest.approx(0.0 - 2.0)
    assert wgan_generator_loss(fake).item() == pytest.approx(0.0)
    assert image_scores(torch.arange(8.0).view(2, 1, 2, 2)).tolist() == [1.5, 5.5]


def test_nonsaturating_losses_at_an_undecided_discriminator() -> None:
    zeros = torch.zeros(3, 1, 2, 2)
    assert nonsaturating_discriminator_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert nonsaturating_generator_loss(zeros).item() == pytest.approx(math.log(2))
    # a confident, correct discriminator has a small loss and leaves the generator a large one
    assert nonsaturating_discriminator_loss(zeros + 10, zeros - 10).item() < 1e-3
    assert nonsaturating_generator_loss(zeros - 10).item() > 9


def test_uniform_cross_entropy_is_smallest_for_uniform_posteriors() -> None:
    k = 7
    assert uniform_cross_entropy(torch.zeros(4, k)).item() == pytest.approx(math.log(k))
    peaked = torch.zeros(4, k)
    peaked[:, 2] = 5.0
    assert uniform_cross_entropy(peaked).item() > math.log(k) + 0.5
    assert entropy(torch.zeros(2, k)).tolist() == pytest.approx([math.log(k)] * 2)
    assert entropy(peaked * 100).max().item() < 1e-6


def test_patch_critic_shapes_and_layers() -> None:
    assert patch_layers(128, 6) == 6
    assert patch_layers(32, 6) == 4
    assert patch_layers(16, 6) == 3
    critic = PatchCritic(3, width=4, layers=patch_layers(32, 6), spectral_norm=True)
    assert critic(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 2, 2)


def test_frozen_modules_pass_gradients_to_inputs_only() -> None:
    net = nn.Linear(3, 1)
    x = torch.randn(2, 3, requires_grad=True)
    with frozen(net):
        net(x).sum().backward()
    assert net.weight.grad is None and x.grad is not None
    assert all(p.requires_grad for p in net.parameters())
