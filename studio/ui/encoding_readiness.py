"""Whether the loaded model can encode images yet, and how to say so when it cannot.

Every source the composer offers, and every point the latent plot shows, is an image to encode; LORD cannot encode
before its second stage. The composer and the plot both ask here, so they agree and word the refusal the same way.
"""

from __future__ import annotations

from typing import Any

#: The multi-line placeholder shown where the composed image would be.
CANNOT_ENCODE = ("This model cannot encode images yet:\nits encoders are trained in a later stage.\n"
                 "Train it further (Train tab)\nor open a later checkpoint.")


def can_encode(model: Any) -> bool:
    """Whether the model can turn images into latents (LORD cannot before its second stage); every source the
    composer offers, dataset items included, is an image to encode."""
    return model is not None and bool(getattr(model, "can_encode", True))


def cannot_encode_message(model: Any) -> str:
    """One line for status bars and error labels (``CANNOT_ENCODE`` is the multi-line placeholder)."""
    step = getattr(model, "step", None)
    at = f" at step {step:,}" if isinstance(step, int) else ""
    return (f"This model{at} cannot encode images yet: its encoders are trained in a later stage. Train it further "
            "(Train tab) or open a later checkpoint.")
