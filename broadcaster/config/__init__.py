"""Config as data, validated once at the edge (pydantic), errors as ``file:line: field: message``."""
