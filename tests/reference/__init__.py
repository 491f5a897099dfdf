"""Independent NumPy references of every update rule and schedule, used by many tests.

They are written from the papers' and the notebooks' formulas, never from the lab's code.
"""
