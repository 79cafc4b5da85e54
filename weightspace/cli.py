"""The ``weightspace`` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="weightspace", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small CNN on the embedded digits and convert "
                                       "networks to parameter graphs")
    demo.add_argument("--epochs", type=int, default=15)
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from weightspace.demo import run_demo

        return run_demo(epochs=args.epochs, seed=args.seed)
    return 1


if __name__ == "__main__":
    sys.exit(main())
