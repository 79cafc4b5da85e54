"""Benchmark: a weight-space generator over a zoo, judged against memorisation.

For each seed, a generator is trained on the zoo with ``task=generate_zoo`` (Hydra overrides
after ``--``), then judged (:func:`weightspace.generation.judge`): ``--samples`` networks are
drawn and compared with the zoo's training split after alignment, beside Zeng et al.'s
baselines (the nearest training network plus noise of the sample's distance, a noise curve,
averages of k aligned training networks). Printed per seed and as mean ± std over seeds:

- the samples' mean and median test accuracy against the zoo's median (target: >= 0.9 x);
- their median distance to the nearest training network, the training networks' own
  nearest-neighbour distance, and the distance noise can go while keeping the samples' mean
  accuracy (the noise limit);
- the conditioning: the samples' mean accuracy in each of 5 quantile bins of the condition
  column, and the rank correlation between bin and accuracy (target >= 0.8);
- the time to sample ``--samples`` networks as ``nn.Module`` s (target < 10 s for 100 digits
  CNNs), the same way ``ws.generate`` does it.

    python scripts/bench_generate.py ZOO [--seeds 0 1 2] [--samples 100] [--out DIR] \\
        [--reuse] -- '+data.where.epoch=[18]' trainer.epochs=60
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import weightspace as ws
from weightspace.configs import compose
from weightspace.generation import judge
from weightspace.training import run


def one_seed(zoo: str, seed: int, samples: int, out: Path, overrides: list[str],
             reuse: bool = False) -> dict:
    run_dir = out / f"seed{seed}"
    earlier = run_dir / "judged.json"
    if reuse and (run_dir / "best.pt").exists():  # trained by an earlier run: judged again
        trained_s = json.loads(earlier.read_text())["train_s"] if earlier.exists() else 0.0
    else:
        begin = time.perf_counter()
        run(compose("train", ["task=generate_zoo", f"data.zoo={zoo}", f"trainer.seed={seed}",
                              "trainer.progress=false", *overrides]), run_dir)
        trained_s = time.perf_counter() - begin
    begin = time.perf_counter()
    nets = ws.generate(run_dir, n=samples, seed=seed)
    sample_s = time.perf_counter() - begin
    assert len(nets) == samples
    result = judge(run_dir, n=samples, seed=seed)
    rows = {r["name"]: r for r in result["report"]["rows"]}
    out = {"seed": seed, "train_s": trained_s, "sample_s": sample_s,
           "zoo_median": result["zoo_median"], "samples": rows["samples"],
           "training": rows["training networks (against the nearest other)"],
           "noise_limit": result["report"]["noise_limit"], "table": result["table"],
           "rows": result["report"]["rows"]}
    if "conditioning" in result:
        out["conditioning"] = result["conditioning"]
    (run_dir / "judged.json").write_text(json.dumps(out, indent=2))
    return out


def mean_std(values) -> str:
    values = [float(v) for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zoo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--out", default="outputs/bench_generate")
    parser.add_argument("--reuse", action="store_true",
                        help="judge the seeds already trained under --out again, without "
                             "training them (seeds trained in separate processes, summarised "
                             "by one more)")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.overrides = argv[cut + 1 :]  # train.py overrides, after --
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = [one_seed(args.zoo, s, args.samples, Path(args.out), args.overrides, args.reuse)
               for s in args.seeds]
    for r in results:
        print(f"\n## seed {r['seed']} (trained in {r['train_s']:.0f} s)\n\n{r['table']}")
        if "conditioning" in r:
            c = r["conditioning"]
            print("\nconditioning: " + ", ".join(f"asked {a:.3f} -> {m:.3f}" for a, m in
                                                  zip(c["asked"], c["mean"], strict=True))
                  + f"; Spearman {c['spearman']:.2f}")
    print(f"\n## {len(results)} seeds, {args.samples} samples each, zoo {args.zoo}; "
          f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads\n")
    print("| networks | mean acc | median acc | distance to the nearest training network "
          "(median) | prediction agreement with it |\n|---|---|---|---|---|")
    for k, row in enumerate(results[0]["rows"]):
        kinds = [r["rows"][k] for r in results]
        print(f"| {row['name']} | " + " | ".join(mean_std([x[key] for x in kinds]) for key in
                                                 ("mean", "median", "distance", "agreement"))
              + " |")
    print("\n| measure | mean ± std over seeds |\n|---|---|")
    lines = {
        "zoo median test accuracy (training split)": [r["zoo_median"] for r in results],
        "samples' median / zoo median": [r["samples"]["median"] / r["zoo_median"]
                                         for r in results],
        "noise limit (distance noise goes at the samples' mean accuracy)":
            [r["noise_limit"] for r in results],
        f"seconds to sample {args.samples} networks as modules": [r["sample_s"] for r in results],
    }
    if all("conditioning" in r for r in results):
        lines["conditioning: Spearman over 5 bins"] = [r["conditioning"]["spearman"]
                                                       for r in results]
    for name, values in lines.items():
        print(f"| {name} | {mean_std(values)} |")
    if all("conditioning" in r for r in results):
        bins = zip(*[r["conditioning"]["mean"] for r in results], strict=True)
        asked = results[0]["conditioning"]["asked"]
        print("\nconditioning, asked -> samples' mean accuracy over seeds: " + ", ".join(
            f"{a:.3f} -> {mean_std(b)}" for a, b in zip(asked, bins, strict=True)))
    medians = np.array([r["samples"]["median"] / r["zoo_median"] for r in results])
    print(f"\nsamples reach {medians.mean():.2f} of the zoo's median accuracy (target 0.9)")


if __name__ == "__main__":
    main()
