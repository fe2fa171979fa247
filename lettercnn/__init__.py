"""lettercnn: read English letters with a small residual CNN, from training to the edge.

Importing the package loads nothing heavy: torch, matplotlib and scikit-learn are
imported inside the functions of the training side that need them.
"""

__version__ = "0.1.0"
