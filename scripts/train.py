"""Train a metanetwork: ``python scripts/train.py data.zoo=zoos/x.h5 model=gmn``.

An expected failure is one line on stderr (``WEIGHTSPACE_TRACEBACK=1`` shows the stack).
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from weightspace.error_report import call_reporting_errors
from weightspace.training import run


@hydra.main(config_path="../configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    def train():
        out = cfg.out_dir or HydraConfig.get().runtime.output_dir
        results = run(cfg, out)
        print(f"{cfg.model.name}: test {results['test']}  ({out})")

    status = call_reporting_errors(train)
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
