"""Can a map or a picture be trusted? The pointing game, deletion/insertion AUC, the randomization check,
transferability of feature visualizations.

Each metric takes maps ``(N, H, W)`` from any method, so it judges the maps, not how they were made:

* `pointing_game`: does the map's maximum fall on the object (a box or a mask)?
* `deletion_auc` / `insertion_auc` (RISE, Petsiuk et al. 2018): does the class probability fall
  fast when the pixels the map ranks first are removed, and rise fast when they are put back?
* `model_randomization` (Adebayo et al. 2018): does the map change when the model's weights are
  replaced by random ones? A map that survives it shows the image, not what the model learned.
* `transferability`: do independently trained models classify a class image as its class?
* `plausibility`: how close does a class image sit to real examples of its class in a judge's features?

Example:
    >>> from visopt.attribution.metrics import pointing_game, deletion_auc, insertion_auc, model_randomization
    >>> pointing_game(maps, masks=data.masks, tolerance=2)          # fraction of hits, higher is better
    >>> deletion_auc(model, data.images, maps).mean()               # lower is better
    >>> insertion_auc(model, data.images, maps).mean()              # higher is better
    >>> model_randomization(model, explain, data.images[:16]).passes(0.5)
"""

from visopt.attribution.metrics import _causal
from visopt.attribution.metrics._causal import deletion_auc, insertion_auc
from visopt.attribution.metrics._pointing import pointing_game
from visopt.attribution.metrics._randomization import RandomizationResult, model_randomization, spearman
from visopt.attribution.metrics._transfer import plausibility, transferability

__all__ = ["RandomizationResult", "deletion_auc", "insertion_auc", "model_randomization", "pointing_game",
           "plausibility", "spearman", "transferability"]

#: The smallest default insertion blur, in pixels (see `insertion_auc`); not in ``__all__``, as before.
MIN_BLUR_SIGMA = _causal.MIN_BLUR_SIGMA
