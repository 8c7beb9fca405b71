"""Attribute Studio: compose images attribute by attribute with disentangled autoencoders."""

__version__ = "0.1.0"
APP_ID = "io.github.attributestudio.AttributeStudio"
