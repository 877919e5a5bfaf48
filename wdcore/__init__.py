"""wdcore: model-invariant weight distribution descriptors of neural networks.

The package behind the book that accompanies Eilertsen, Jönsson, Unger and
Ynnerman, *Model-invariant Weight Distribution Descriptors for Visual
Exploration of Neural Networks en Masse* (EuroVis 2024). Each public function
points to the chapter that derives it.
"""

from wdcore.descriptors import mi_wd, weight_vector
from wdcore.permutations import permutation_spec, permute

__all__ = ["mi_wd", "permutation_spec", "permute", "weight_vector"]
__version__ = "0.1.0"
