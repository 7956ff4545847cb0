"""untangle: find Lambda functions that orchestrate other Lambdas, and migrate them to Step
Functions."""

__version__ = "0.1.0"
