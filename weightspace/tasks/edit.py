"""INR editing: from the weights of a digits INR, produce the weights of the edited image's INR.

The zoo is a ``digits_inr`` zoo (one SIREN per digits image; its ``image`` column says which).
For the image ``x`` an INR draws, the target is ``T(x)``; ``dilate`` is the grey-scale
morphological dilation with a 3x3 square, ``T(x)[p] = max_{q in 3x3(p)} x[q]`` (zero padding
outside the image, intensities are >= 0). The metanetwork outputs ``delta [B, P]``, and the loss
is the mean squared error between the rendered edited INR ``f(grid; theta + delta)`` and
``T(x)`` over the 8x8 pixel grid -- every INR of the batch rendered at once with
:func:`~weightspace.functional.batched_forward`. Metrics: that MSE on a split, and beside it the
MSE of the unedited INRs (what editing has to beat).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from weightspace.datasets import digit_images, pixel_grid
from weightspace.functional import batched_forward
from weightspace.graph.spec import GraphSpec
from weightspace.nets import SIREN
from weightspace.registry import Registry
from weightspace.tasks.base import TASKS
from weightspace.tasks.zoo_task import ZooTask

EDITS: Registry = Registry("image edit", "task.op")
EDITS.register("dilate", lambda img: F.max_pool2d(img, 3, stride=1, padding=1))
EDITS.register("erode", lambda img: -F.max_pool2d(-img, 3, stride=1, padding=1))


@TASKS.register("edit")
class EditINR(ZooTask):
    """Editing digits INRs: the metanetwork outputs the change of weights that makes an INR
    draw ``T(image)``.

    Args:
        recipe: the zoo's recipe config (``Zoo.recipe``, a ``digits_inr`` one), which names the
            SIREN's widths and ``w0``.
        archs: the architecture ids trained on (the recipe's one SIREN).
        op: the edit, a name in ``EDITS`` (``dilate``, ``erode``).
    """

    name, score, maximize, equivariant = "edit", "mse", False, True

    def __init__(self, recipe: dict, archs: list[str], op: str = "dilate"):
        super().__init__(recipe, archs)
        if recipe.get("recipe") != "digits_inr":
            raise ValueError(f"the edit task needs a digits_inr zoo; this one was built by "
                             f"recipe {recipe.get('recipe')!r}")
        self.transform = EDITS[op]  # an unknown name is refused, naming task.op
        self.op = op
        self.inr = SIREN(2, tuple(recipe["hidden"]), 1, w0=recipe["w0"]).eval()
        if list(archs) != [GraphSpec.from_module(self.inr).id]:
            raise ValueError(f"architectures {list(archs)} are not the recipe's one SIREN "
                             f"{GraphSpec.from_module(self.inr).id}")
        images = digit_images()[0]
        side = int(images.shape[1] ** 0.5)
        self.targets = self.transform(images.view(-1, 1, side, side)).reshape(len(images), -1)
        self.grid, self.side = pixel_grid(side), side

    @classmethod
    def create(cls, cfg, recipe, archs):
        return cls(recipe, archs, cfg.get("op", "dilate"))

    def _to(self, device):
        if self.grid.device != device:
            self.inr, self.grid = self.inr.to(device), self.grid.to(device)
            self.targets = self.targets.to(device)

    def render(self, vecs: Tensor) -> Tensor:
        """``[B, pixels]``: every INR of ``vecs`` evaluated on the pixel grid."""
        self._to(vecs.device)
        return batched_forward(self.inr, vecs.float(), self.grid).squeeze(-1)

    def encode(self, y: Tensor) -> Tensor:
        self._to(y.device)
        return self.targets[y.long()]

    def objective(self, out, vecs, buffers, target, arch=0):
        return F.mse_loss(self.render(vecs + out.float()), target)

    def record(self, out, vecs, buffers, y, arch=0):
        """``[B, 3, pixels]``: the unedited rendering, the edited one, the target."""
        with torch.no_grad():
            return torch.stack([self.render(vecs), self.render(vecs + out.float()),
                                self.encode(y)], 1).cpu()

    def metrics(self, records, y):
        original, edited, target = records[:, 0], records[:, 1], records[:, 2]
        return {"mse": float(((edited - target) ** 2).mean()),
                "mse_unedited": float(((original - target) ** 2).mean())}

    def plot_records(self, out_dir, records, y):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = min(8, len(records))
        fig, axes = plt.subplots(3, n, figsize=(1.2 * n, 3.8), squeeze=False)
        for row, title in enumerate(("INR", f"edited ({self.op})", "target")):
            for i in range(n):
                ax = axes[row, i]
                ax.imshow(records[i, row].reshape(self.side, self.side), cmap="gray_r",
                          vmin=0, vmax=1)
                ax.set_xticks([]), ax.set_yticks([])
            axes[row, 0].set_ylabel(title, fontsize=8)
        fig.suptitle("test split", fontsize=9)
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "edits.png", dpi=120)
        plt.close(fig)
