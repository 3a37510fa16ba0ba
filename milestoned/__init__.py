"""milestoned: execute software milestones with several agents, tracked in git."""

__version__ = "0.1.0"
