"""The shipped models (one folder each: checkpoint, card.json, README.md), installed as ``studio.shipped_models``;
``studio.paths`` finds them with importlib.resources."""
