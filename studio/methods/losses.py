"""GAN pieces shared by the adversarial (paper 004) and mixing (paper 002) methods.

WGAN-GP (paper 004 eq. 9), the non-saturating GAN loss (paper 002 eqs. 3.4, 3.7-3.9), the cross-entropy to the
uniform distribution that paper 004 uses for disentanglement (eq. 4), and a PatchGAN-style critic/discriminator.
A patch network scores every image region; the score of an image is the mean over its patches, and the gradient
penalty constrains exactly that function, so the loss and the Lipschitz constraint speak about the same critic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Let gradients flow through ``modules`` (a critic, classifiers) to their inputs while the generator learns,
    without computing gradients for their own weights."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def image_scores(scores: Tensor) -> Tensor:
    """A critic's output (B,), (B, 1) or a patch map (B, 1, h, w) -> one score per image (B,)."""
    return scores.reshape(scores.shape[0], -1).mean(dim=1)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2] on points drawn uniformly between real and fake pairs.

    ``fake`` is detached: the penalty trains the critic only. The graph is kept so the penalty can be
    back-propagated into the critic's weights.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake batches differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    alpha_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    draw_on = generator.device if generator is not None else real.device
    alpha = torch.rand(alpha_shape, generator=generator, dtype=real.dtype, device=draw_on).to(real.device)
    mixed = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    scores = image_scores(critic(mixed))
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.reshape(grad.shape[0], -1).norm(2, dim=1)
    return (norms - 1.0).pow(2).mean()


def wgan_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """The critic maximises E[D(real)] - E[D(fake)] (paper 004 eq. 9, without the penalty): minimise the negative."""
    return image_scores(fake_scores).mean() - image_scores(real_scores).mean()


def wgan_generator_loss(fake_scores: Tensor) -> Tensor:
    return -image_scores(fake_scores).mean()


def nonsaturating_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """BCE(D(real), 1) + BCE(D(fake), 0), averaged over patches (paper 002 eqs. 3.7-3.9)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def nonsaturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """BCE(D(fake), 1): the generator's non-saturating loss (paper 002 eq. 3.4)."""
    return F.softplus(-fake_logits).mean()


def uniform_cross_entropy(logits: Tensor) -> Tensor:
    """Cross-entropy between the uniform distribution and softmax(logits), averaged over the batch (paper 004 eq. 4).

    Its minimum, log(K), is reached exactly when the classifier cannot tell the K classes apart.
    """
    return -F.log_softmax(logits.float(), dim=1).mean(dim=1).mean()


def entropy(logits: Tensor) -> Tensor:
    """Entropy (nats) of softmax(logits) per row."""
    logp = F.log_softmax(logits.float(), dim=1)
    return -(logp.exp() * logp).sum(dim=1)


class PatchCritic(nn.Module):
    """PatchGAN-style network: stride-2 4x4 convolutions with leaky ReLU, then a 3x3 convolution to one score per
    patch. No normalisation layers when used as a WGAN-GP critic (the penalty is per sample); ``spectral_norm``
    wraps every hidden convolution but the first, as in the thesis' discriminator (paper 002 Table 3.5).
    """

    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 4, max_width: int = 512,
                 slope: float = 0.2, spectral_norm: bool = False) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError("a patch critic needs at least one strided layer")
        blocks: list[nn.Module] = []
        channels = in_channels
        for i in range(layers):
            out = min(max_width, width * 2**i)
            conv = nn.Conv2d(channels, out, 4, stride=2, padding=1)
            if spectral_norm and i > 0:
                conv = nn.utils.parametrizations.spectral_norm(conv)
            blocks += [conv, nn.LeakyReLU(slope)]
            channels = out
        blocks.append(nn.Conv2d(channels, 1, 3, stride=1, padding=1))
        self.net = nn.Sequential(*blocks)

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> patch scores (B, 1, H / 2**layers, W / 2**layers)."""
        return self.net(images)


def patch_layers(resolution: int, wanted: int, smallest_map: int = 2) -> int:
    """How many stride-2 layers fit ``resolution`` while the score map stays at least ``smallest_map`` wide."""
    fit = 0
    size = resolution
    while size // 2 >= smallest_map and fit < wanted:
        size //= 2
        fit += 1
    return max(1, fit)
