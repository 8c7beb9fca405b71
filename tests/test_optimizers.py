"""Adam as the methods build it: fused on the CPU, and exact after a weight changes memory format under a restored
state (the trainer's channels-last resume)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from studio.methods.optimizers import adam, match_state_layout


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    model(x).square().mean().backward()
    optimizer.step()


def test_adam_is_fused_on_the_cpu_and_takes_param_groups() -> None:
    conv, linear = nn.Conv2d(3, 4, 3), nn.Linear(4, 2)
    single = adam(conv.parameters(), lr=1e-3)
    assert single.param_groups[0]["fused"] is True
    groups = adam([{"params": conv.parameters(), "lr": 1e-3}, {"params": (p for p in linear.parameters())}], lr=1e-2)
    assert [g["lr"] for g in groups.param_groups] == [1e-3, 1e-2]
    assert [len(g["params"]) for g in groups.param_groups] == [2, 2]  # generators were read once, not lost


def test_a_restored_state_follows_its_weights_into_channels_last() -> None:
    """Copies restored from the same contiguous state, then made channels-last. Reference: torch's per-parameter
    loop, which pairs elements by index whatever their strides. The fused step agrees with it once the state is
    realigned, and not without (what resuming a channels-last run did before match_state_layout)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    x = torch.randn(2, 3, 8, 8)
    optimizer = adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        _step(model, optimizer, x)
    saved_model, saved_state = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())

    def restored(fused: bool, realign: bool) -> dict[str, torch.Tensor]:
        clone = copy.deepcopy(model)
        clone.load_state_dict(saved_model)
        opt = adam(clone.parameters(), lr=1e-2)
        opt.load_state_dict(copy.deepcopy(saved_state))  # load_state_dict keeps the tensors it was handed
        for group in opt.param_groups:  # the saved groups say fused; the reference overrides it
            group["fused"], group["foreach"] = (True, None) if fused else (None, False)
        clone.to(memory_format=torch.channels_last)
        if realign:
            match_state_layout(opt)
        _step(clone, opt, x.contiguous(memory_format=torch.channels_last))
        return clone.state_dict()

    reference = restored(fused=False, realign=False)
    realigned = restored(fused=True, realign=True)
    stale = restored(fused=True, realign=False)
    for name, value in reference.items():
        torch.testing.assert_close(realigned[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert max((stale[k] - reference[k]).abs().max() for k in reference) > 1e-3
