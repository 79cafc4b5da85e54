"""The ``weightspace`` command line.

Each command imports what it runs when it runs (``weightspace zoo info`` does not load the
training stack). An expected failure is one line on stderr, exit status 2 for usage and 1 for
data (:mod:`weightspace.error_report`); ``--traceback`` shows the stack.
"""

from __future__ import annotations

import argparse
import sys


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="weightspace", description=__doc__)
    parser.add_argument("--traceback", action="store_true",
                        help="show the full stack of an error (also WEIGHTSPACE_TRACEBACK=1) "
                             "instead of one line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build a small MLP zoo on MNIST-1D (generated offline), "
                                       "convert networks to graphs, train GMN and StatNN to "
                                       "predict accuracy")
    demo.add_argument("--runs", type=_positive, default=400, help="networks trained for the zoo")
    demo.add_argument("--epochs", type=_positive, default=20,
                      help="metanetwork training epochs")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="outputs/demo")

    train = sub.add_parser("train", help="train a metanetwork (Hydra overrides, e.g. "
                                         "data.zoo=zoos/x.h5 model=gmn)")
    train.add_argument("overrides", nargs="*")

    evaluate = sub.add_parser("evaluate", help="metrics of a trained metanetwork: ckpt=RUN_DIR"
                                               "|best.pt [split=test] [zoo=PATH] [device=auto]; "
                                               "of a zoo generator, its memorisation report: "
                                               "ckpt=RUN_DIR [n=100] [zoo=PATH] [seed=0]")
    evaluate.add_argument("options", nargs="+")
    generate = sub.add_parser("generate", help="sample networks from a zoo generator "
                                               "(task=generate_zoo) into a zoo file: "
                                               "ckpt=RUN_DIR n=100 out=samples.h5 "
                                               "[condition=VALUE] [seed=0]")
    generate.add_argument("options", nargs="+")

    zoo = sub.add_parser("zoo", help="build, check and combine model zoos")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", required=True)
    build = zoo_sub.add_parser("build", help="build a zoo from a recipe (Hydra overrides, e.g. "
                                             "zoo=digits_mlp n_runs=200 out=zoos/x.h5)")
    build.add_argument("overrides", nargs="*")
    check = zoo_sub.add_parser("verify", help="check checksums, NaN/inf and shapes per model; "
                                              "exits 1 when anything is wrong")
    check.add_argument("path")
    summary = zoo_sub.add_parser("info", help="architectures, counts and metric ranges")
    summary.add_argument("path")
    importer = zoo_sub.add_parser("import", help="convert a published zoo: 'small_cnn_zoo "
                                                 "FOLDER OUT' or 'inr SPLITS_JSON OUT'")
    importer.add_argument("format", choices=["small_cnn_zoo", "inr"])
    importer.add_argument("source")
    importer.add_argument("out")
    merge = zoo_sub.add_parser("merge", help="join zoos (e.g. the shards of several ranks)")
    merge.add_argument("out")
    merge.add_argument("sources", nargs="+")

    args = parser.parse_args(argv)
    from weightspace.error_report import call_reporting_errors

    return call_reporting_errors(lambda: _dispatch(args), traceback=args.traceback)


def _dispatch(args) -> int:
    if args.command == "demo":
        from weightspace.demo import run_demo

        return run_demo(runs=args.runs, epochs=args.epochs, seed=args.seed, out=args.out)
    if args.command == "train":
        return _train(args.overrides)
    if args.command == "evaluate":
        return _evaluate(args.options)
    if args.command == "generate":
        return _generate(args.options)
    return _zoo(args)


def _options(command: str, options: list[str], known: set[str], required: dict[str, str]
             ) -> dict:
    """``key=value`` options of a command, each key one of ``known``; ``required`` maps the
    keys that must be given to how to give them."""
    from weightspace.errors import ConfigError

    kwargs = {}
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep or key not in known:
            raise ConfigError(f"weightspace {command}: expected key=value with key in "
                              f"{sorted(known)}, got {opt!r}")
        kwargs[key] = value
    missing = [how for key, how in required.items() if key not in kwargs]
    if missing:
        raise ConfigError(f"weightspace {command}: {'; '.join(missing)} required")
    return kwargs


def _generate(options: list[str]) -> int:
    from weightspace.generation import load_generator, sample_rows, write_samples

    kw = _options("generate", options, {"ckpt", "n", "out", "condition", "seed", "device"},
                  {"ckpt": "ckpt=RUN_DIR (of a task=generate_zoo run) is",
                   "n": "n=NUMBER of networks is", "out": "out=PATH of the zoo to write is"})
    trained = load_generator(kw["ckpt"], kw.get("device", "cpu"))
    condition = float(kw["condition"]) if "condition" in kw else None
    seed = int(kw.get("seed", 0))
    rows = sample_rows(trained, int(kw["n"]), condition, seed=seed)
    path = write_samples(trained, rows, kw["out"], condition, seed)
    print(f"{len(rows)} networks written to {path}")
    return 0


def _train(overrides: list[str]) -> int:
    import time

    from weightspace.configs import compose
    from weightspace.training import run

    cfg = compose("train", overrides)
    out = cfg.out_dir or f"outputs/train/{cfg.model.name}/{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    results = run(cfg, out)
    print(f"{cfg.model.name}: test {results['test']}  ({out})")
    return 0


def _evaluate(options: list[str]) -> int:
    import json

    from weightspace.training import evaluate, load_trained
    from weightspace.training.device import resolve_device

    kwargs = _options("evaluate", options, {"ckpt", "split", "zoo", "device", "n", "seed"},
                      {"ckpt": "ckpt=RUN_DIR or ckpt=PATH/best.pt is"})
    # loaded once, here, and handed on (evaluate and judge take a loaded checkpoint)
    trained = load_trained(kwargs.pop("ckpt"), resolve_device(kwargs.pop("device", "auto")),
                           kind=("metanetwork", "generator"))
    n, seed = int(kwargs.pop("n", 100)), int(kwargs.pop("seed", 0))
    if trained.task.kind == "generator":
        from weightspace.generation import judge

        result = judge(trained, n, kwargs.get("zoo"), seed)
        print(result.pop("table"))
        print(json.dumps(result, indent=2))
        return 0
    print(json.dumps(evaluate(trained, **kwargs), indent=2))
    return 0


def _zoo(args) -> int:
    if args.zoo_command == "build":
        from weightspace.configs import compose
        from weightspace.zoo.build import build_from_config

        print(f"zoo written to {build_from_config(compose('build_zoo', args.overrides))}")
        return 0
    if args.zoo_command == "verify":
        from weightspace.zoo.verify import verify

        report = verify(args.path)
        for problem in report.problems:
            print(f"BAD  {problem}")
        print(f"{args.path}: {report.checked}/{report.models} models checked, "
              f"{len(report.problems)} problems")
        return 0 if report.ok else 1
    if args.zoo_command == "info":
        from weightspace.zoo.verify import info

        summary = info(args.path)
        print(f"{summary['path']}: {summary['models']} models from {summary['runs']} runs "
              f"({summary['files']} files), recipe {summary['recipe']}")
        for a in summary["archs"]:
            print(f"  arch {a['id']}: {a['models']} models, {a['params']:,} params, "
                  f"{a['nodes']} nodes, {a['edges']} edges")
        for name, col in summary["columns"].items():
            if "min" in col:
                print(f"  {name:>16}: {col['min']:.4g} .. {col['max']:.4g} "
                      f"(mean {col['mean']:.4g})")
            else:
                print(f"  {name:>16}: {', '.join(col['values'])}")
        for metric, tau in summary["noise_ceiling"].items():
            print(f"  noise ceiling of {metric}: Kendall tau {tau:.3f} between two halves of "
                  f"the test set")
        return 0
    if args.zoo_command == "import":
        from weightspace.zoo.importers import import_inr_folder, import_small_cnn_zoo

        reader = import_small_cnn_zoo if args.format == "small_cnn_zoo" else import_inr_folder
        print(f"imported into {reader(args.source, args.out)}")
        return 0
    if args.zoo_command == "merge":
        from weightspace.zoo import merge

        print(merge(args.sources, args.out))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
