"""Course figures: masks, descriptors, gradients, barriers."""

__all__: list[str] = []
