"""Building the method a run trains: its class by name, its config from option values, and the weights a
fine-tuning run starts from."""

from __future__ import annotations

from typing import Any

from studio.errors import CheckpointError, StudioError
from studio.methods.base import Method
from studio.methods.config import config_fields, parse_value
from studio.methods.registry import get_method, method_names


def method_class(name: str) -> type[Method]:
    """The registered method ``name``; an unknown name is a StudioError that lists the known ones."""
    try:
        return get_method(name)
    except KeyError:
        raise StudioError(f"unknown method {name!r}; choose one of {', '.join(method_names())}") from None


def build_config(cls: type[Method], options: dict[str, Any]) -> Any:
    """The method's config with ``options`` applied; text values are parsed, unknown names are an error."""
    known = {f.name: f for f in config_fields(cls.config_class)}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise StudioError(f"{cls.name} has no option(s) {', '.join(unknown)}; its options are: "
                          f"{', '.join(known)}")
    kwargs: dict[str, Any] = {}
    for name, value in options.items():
        f = known[name]
        try:
            if isinstance(value, str) and f.type is not str:
                value = parse_value(f, value)
            elif f.type is tuple and isinstance(value, list):
                value = tuple(value)
            elif f.type is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            else:
                parse_value(f, ",".join(map(str, value)) if f.type is tuple else str(value))
        except ValueError as e:
            raise StudioError(f"{cls.name} option {e}") from None
        kwargs[name] = value
    return cls.config_class(**kwargs)


#: State-dict prefixes of weights that only help training and depend on the dataset's values.
TRAINING_AID_PREFIXES = ("label_heads.", "chunk_critics.")


def copy_weights(source: Method, target: Method, origin: str) -> None:
    """Fine-tuning: ``target`` takes ``source``'s weights (from ``origin``, named in errors); slots must agree, and
    training aids tied to the old dataset's values are dropped where they do not fit."""
    theirs = [(s.name, s.shape) for s in source.slots]
    ours = [(s.name, s.shape) for s in target.slots]
    if theirs != ours:
        raise CheckpointError(f"--init-from {origin}: its slots {theirs} differ from this dataset's {ours}; "
                              "fine-tuning needs the same attributes and latent sizes")
    state, own = source.state_dict(), target.state_dict()
    # Training aids that read a dataset's values (GZS-Net's chunk label heads) carry over only where they fit:
    # a user's folder has other values, and a run may add or drop the aid.
    aids = {k for k in {*state, *own} if k.startswith(TRAINING_AID_PREFIXES)}
    state = {k: v for k, v in state.items() if k not in aids or (k in own and own[k].shape == v.shape)}
    try:
        result = target.load_state_dict(state, strict=False)
        left = [k for k in (*result.missing_keys, *result.unexpected_keys) if k not in aids]
        if left:
            raise RuntimeError(f"missing or unexpected weights: {', '.join(left[:5])}")
    except RuntimeError as e:
        theirs_px, ours_px = source.context.resolution, target.context.resolution
        hint = (f"; it was trained at {theirs_px} px and this dataset is {ours_px} px: give the dataset res="
                f"{theirs_px} (e.g. --dataset DIR,res={theirs_px})" if theirs_px != ours_px else "")
        raise CheckpointError(f"--init-from {origin}: its weights do not fit ({str(e).splitlines()[0]}){hint}") \
            from None
