"""The app's icons, installed as ``studio.resources``; ``studio.paths`` finds them with importlib.resources."""
