"""Training figures: curves over epochs, box plots, predictions."""

__all__: list[str] = []
