"""Zoo recipes by name. A config names its recipe; nothing from a config is instantiated."""

from model_zoo.recipes.base import Recipe, Run, TrainedModels
from model_zoo.recipes.digits_cnn import DigitsCNN
from model_zoo.recipes.digits_inr import DigitsINR
from model_zoo.recipes.digits_mlp import DigitsMLP
from model_zoo.recipes.digits_resnet import DigitsResNet

RECIPES: dict[str, type[Recipe]] = {
    "digits_cnn": DigitsCNN,
    "digits_inr": DigitsINR,
    "digits_mlp": DigitsMLP,
    "digits_resnet": DigitsResNet,
}


def recipe_for(config) -> Recipe:
    name = config["recipe"]
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r} (config key zoo.recipe); known: "
                       f"{sorted(RECIPES)}")
    return RECIPES[name](config)


__all__ = ["RECIPES", "Recipe", "Run", "TrainedModels", "recipe_for"]
