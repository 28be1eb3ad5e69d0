"""broadcaster: multi-group broadcast and content scheduler for community chat groups."""

__version__ = "0.1.0"
