"""Attributed datasets: schemas, built-in procedural sets, user folders, splits and group sampling."""

from studio.data.dataset import AttributedDataset
from studio.data.schema import Attribute, AttributeSchema
from studio.data.spec import open_dataset

__all__ = ["Attribute", "AttributeSchema", "AttributedDataset", "open_dataset"]
