"""What a zoo recipe is: runs sampled from a seed, grouped for vectorised training; and
``RECIPES``, the registry that finds recipes by name.

A recipe package registers its recipes under the entry-point group ``weightspace.recipes``
(in its ``pyproject.toml``: ``[project.entry-points."weightspace.recipes"]``, ``name =
"package.module:RecipeClass"``); the zoo builder, the training tasks and the command line find
them there, so the library never imports a recipe package. :func:`register_recipe` adds one in
code (a user's own recipe in a notebook or a test).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from weightspace.graph.spec import GraphSpec
from weightspace.registry import Registry


@dataclass(frozen=True)
class Run:
    """One training run: its id, its seed, and its sampled hyperparameters.

    Args:
        run_id: the run's index in the build.
        seed: the seed of its initialisation and data order.
        hparams: its sampled hyperparameters.
    """

    run_id: int
    seed: int
    hparams: Mapping[str, object] = field(default_factory=dict)


@dataclass
class TrainedModels:
    """Checkpoints of several runs of one architecture, ready for ``ZooWriter.write``.

    Args:
        spec: the architecture.
        params: ``[N, P]`` weights.
        meta: ``N`` values per metadata column.
        buffers: ``[N, Q]`` buffers, or ``None``.
    """

    spec: GraphSpec
    params: torch.Tensor  # [N, P]
    meta: dict[str, np.ndarray]  # N values per column
    buffers: torch.Tensor | None = None

    def without_runs(self, runs: set[int]) -> TrainedModels:
        """The checkpoints of every run not in ``runs``."""
        keep = ~np.isin(np.asarray(self.meta["run_id"]), list(runs))
        rows = torch.from_numpy(np.nonzero(keep)[0])
        return TrainedModels(self.spec, self.params[rows],
                             {k: np.asarray(v)[keep] for k, v in self.meta.items()},
                             None if self.buffers is None else self.buffers[rows])


class Recipe(ABC):
    """Subclasses sample runs, build their networks and train groups of them at once.

    Args:
        config: the ``zoo`` config (``configs/zoo/NAME.yaml``); each recipe documents its keys.
    """

    name: str = "recipe"

    def __init__(self, config: Mapping):
        self.config = dict(config)

    def run(self, run_id: int, seed: int) -> Run:
        """Run ``run_id`` of a build seeded ``seed``: the same in every process and shard."""
        rng = np.random.default_rng([seed, run_id])
        return Run(run_id, int(rng.integers(2**31 - 1)), self.sample(rng))

    def sample(self, rng: np.random.Generator) -> dict:
        """The run's hyperparameters (none by default)."""
        return {}

    @abstractmethod
    def group_key(self, run: Run) -> Hashable:
        """Runs with equal keys share an architecture and optimiser: they train together."""

    @abstractmethod
    def build(self, run: Run) -> nn.Module:
        """The run's network, initialised with the run's seed."""

    @abstractmethod
    def train(self, runs: list[Run], on_step=None) -> list[TrainedModels]:
        """Train ``runs`` (one group) together; their checkpoints, ready to store."""

    def probe_inputs(self, k: int, seed: int = 0) -> torch.Tensor | None:
        """``[k, *input]``: ``k`` inputs of the recipe's data that the zoo's networks were not
        trained on (an INR recipe: ``k`` of its coordinates), for probe features
        (``model.probe_data=val``); None where the recipe has none."""
        return None

    def evaluate(self, arch: str, params: torch.Tensor) -> dict[str, np.ndarray] | None:
        """The zoo's metric columns (``test_acc``, ``val_loss``, ...) of weight rows
        ``[B, P]`` of architecture ``arch``, measured as the build measures its networks --
        for networks that were not trained by the recipe (generated, edited, merged). None
        where the recipe cannot (the default)."""
        return None

    def predictions(self, arch: str, params: torch.Tensor, split: str = "test"
                    ) -> torch.Tensor | None:
        """``[B, n]``: what each of the networks ``params [B, P]`` predicts for the ``n``
        inputs of the recipe's ``split`` (a classifier's labels); None where the recipe has
        no such data (the default)."""
        return None

    def network_of(self, arch: str, draws: int = 256) -> nn.Module:
        """A network of architecture ``arch`` (a spec id) as this recipe builds it: runs
        ``0, 1, ...`` of seed 0 are drawn until one has that architecture (a recipe that varies
        the architecture, e.g. the activation, meets each of its few choices early)."""
        found = getattr(self, "_networks", {})
        self._networks = found
        for run_id in range(draws):
            if arch in found:
                break
            model = self.build(self.run(run_id, 0))
            found.setdefault(GraphSpec.from_module(model).id, model.eval())
        if arch not in found:
            raise ValueError(f"recipe {self.name!r} built no network of architecture {arch} in "
                             f"{draws} draws (it built {sorted(found)}): is the zoo from "
                             f"another configuration of the recipe?")
        return found[arch]


RECIPES: Registry[type[Recipe]] = Registry("recipe", "zoo.recipe", group="weightspace.recipes")


def register_recipe(name: str, recipe: type[Recipe]) -> type[Recipe]:
    """Make ``recipe`` (a :class:`Recipe` subclass) buildable as ``zoo.recipe=name``."""
    if not (isinstance(recipe, type) and issubclass(recipe, Recipe)):
        raise TypeError(f"recipe {name!r} must be a Recipe subclass, got {recipe!r}")
    return RECIPES.register(name, recipe)


def recipe_for(config: Mapping) -> Recipe:
    """The recipe a zoo config names (``config["recipe"]``), built from that config."""
    return RECIPES[config["recipe"]](config)
