"""Floor 4, the use cases: the service, the derivative cache and its pruning, and the guards around renders.

The guards are the render slots, the stranger budgets, the failure memory,
the guess limit and the size policy.
"""
