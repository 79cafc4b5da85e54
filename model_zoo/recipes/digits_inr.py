"""``digits_inr``: one SIREN (2 -> 32 -> 32 -> 1, w0 = 30) fitted to each digits image.

How images are sampled: the 1,797 digits are shuffled once with the build's seed; run ``i``
fits image ``order[i // copies]`` (so any ``n_runs`` is a uniform random sample of images, in
the same order in every process), and ``copies > 1`` fits each image several times from
different random initialisations (run seeds). The label of an INR is its image's digit.

Initialisation: by default each INR starts from its own random initialisation (its run seed).
With ``shared_init_seed: S`` all of them start from one, drawn with seed ``S``, so that two
INRs differ only by what fitting wrote into them. With 1,797 images, weight-space classifiers
find the digit in a shared-init zoo, while across independent initialisations the fitted
weights stay dominated by their random starts (benchmarks/RESULTS.md). ``copies > 1`` needs
independent initialisations.

An INR maps the 8x8 pixel grid, coordinates in [-1, 1]^2, to intensities in [0, 1]; it is
fitted full-batch (all 64 pixels a step) with Adam on the mean squared error. Each checkpoint
stores the MSE and the PSNR ``10 log10(1 / MSE)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, vmap

from model_zoo.training import FlatParams, VectorOptimizer, batched_grad
from weightspace.datasets import digit_images, pixel_grid
from weightspace.graph.spec import GraphSpec
from weightspace.nets import SIREN
from weightspace.zoo.recipe import Recipe, Run, TrainedModels


class DigitsINR(Recipe):
    """One SIREN per digits image (module docstring).

    Args:
        config: ``configs/zoo/digits_inr.yaml``: ``hidden``, ``w0``, ``copies``,
            ``shared_init_seed``, ``lr``, ``steps``, ``checkpoints``.
    """

    name = "digits_inr"

    def signals(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What the INRs fit: ``[n, S]`` values at the :meth:`coords` and ``[n]`` labels."""
        return digit_images()

    def coords(self) -> torch.Tensor:
        """``[S, d]``: the coordinates every signal is sampled at."""
        return pixel_grid()

    def probe_inputs(self, k: int, seed: int = 0) -> torch.Tensor:
        """``[k, d]``: ``k`` of the :meth:`coords`, evenly spread over their order (all of them
        when ``k`` is their number). An INR's inputs are coordinates, not signals: its values
        there are the signal it renders, which is what a classifier of INRs should see."""
        coords = self.coords()
        if not 1 <= k <= len(coords):
            raise ValueError(f"model.probes={k}: {self.name}'s signals have {len(coords)} "
                             f"coordinates to probe at; use 1 to {len(coords)}")
        return coords[torch.linspace(0, len(coords) - 1, k).round().long()]

    def run(self, run_id: int, seed: int) -> Run:
        copies = int(self.config.get("copies", 1))
        n_images = len(self.signals()[1])
        if run_id >= n_images * copies:
            raise ValueError(f"{self.name} has {n_images} signals x {copies} copies: run "
                             f"{run_id} does not exist (lower n_runs or raise zoo.copies)")
        order = np.random.default_rng(seed).permutation(n_images)
        image = int(order[run_id // copies])
        rng = np.random.default_rng([seed, run_id])
        return Run(run_id, int(rng.integers(2**31 - 1)),
                   {"image": image, "copy": run_id % copies})

    def group_key(self, run: Run):
        return "siren"  # every INR has the same architecture and optimiser

    def build(self, run: Run) -> SIREN:
        c = self.config
        shared = c.get("shared_init_seed")
        if shared is not None and int(c.get("copies", 1)) > 1:
            raise ValueError(f"{self.name}: copies > 1 fits each signal from several random "
                             f"initialisations; with shared_init_seed there is only one")
        with torch.random.fork_rng():
            torch.manual_seed(run.seed if shared is None else int(shared))
            return SIREN(self.coords().shape[1], tuple(c["hidden"]), 1, w0=c["w0"])

    def fit_alone(self, run: Run, steps: int | None = None) -> SIREN:
        """The reference: one INR fitted on its own with ``torch.optim.Adam``."""
        c = self.config
        images, _ = self.signals()
        target, coords = images[run.hparams["image"]].unsqueeze(-1), self.coords()
        model = self.build(run)
        opt = torch.optim.Adam(model.parameters(), lr=float(c["lr"]), eps=1e-8)
        for _ in range(steps or c["steps"]):
            opt.zero_grad()
            ((model(coords) - target) ** 2).mean().backward()
            opt.step()
        return model

    def train(self, runs: list[Run], on_step=None) -> list[TrainedModels]:
        c = self.config
        images, labels = self.signals()
        target = images[[r.hparams["image"] for r in runs]].unsqueeze(-1)  # [B, S, 1]
        coords = self.coords()
        models = [self.build(r) for r in runs]
        template = models[0]

        def mse(p, y):
            return ((functional_call(template, p, (coords,)) - y) ** 2).mean()

        mse_of = vmap(mse)
        fp = FlatParams(models)
        flat, B = fp.flat, len(runs)
        opt = VectorOptimizer("adam", flat, torch.full((B,), float(c["lr"])), torch.zeros(B))
        active = torch.ones(B, dtype=torch.bool)
        spec = GraphSpec.from_module(template)
        assert fp.names == spec.params.names()  # so rows of `flat` are in the spec's layout
        rows, meta = [], {}
        for step in range(1, c["steps"] + 1):
            flat = opt.step(flat, batched_grad(mse, fp, flat, target)[1], active)
            if on_step is not None:
                on_step()
            if step in c["checkpoints"]:
                with torch.no_grad():
                    err = mse_of(fp.views(flat), target)
                rows.append(flat.clone())  # FlatParams' order is the spec's layout
                for b, r in enumerate(runs):
                    for key, value in (("run_id", r.run_id), ("seed", r.seed), ("epoch", step),
                                       ("step", step), ("image", r.hparams["image"]),
                                       ("copy", r.hparams["copy"]),
                                       ("label", int(labels[r.hparams["image"]])),
                                       ("mse", float(err[b])),
                                       ("psnr", float(10 * torch.log10(1 / err[b])))):
                        meta.setdefault(key, []).append(value)
        return [TrainedModels(spec, torch.cat(rows), {k: np.asarray(v) for k, v in meta.items()})]
