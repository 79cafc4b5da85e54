"""The recipes of weightspace's own zoos. Each is registered with the library through the
``weightspace.recipes`` entry points in ``pyproject.toml``, which is how ``zoo.recipe=NAME``
finds it (:data:`weightspace.zoo.recipe.RECIPES`)."""

from model_zoo.recipes.digits_cnn import DigitsCNN
from model_zoo.recipes.digits_inr import DigitsINR
from model_zoo.recipes.digits_mlp import DigitsMLP
from model_zoo.recipes.digits_resnet import DigitsResNet

__all__ = ["DigitsCNN", "DigitsINR", "DigitsMLP", "DigitsResNet"]
