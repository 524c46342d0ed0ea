"""netdsl: a declarative language for PyTorch networks."""

from dsl.errors import DSLError

__all__ = ["DSLError"]
