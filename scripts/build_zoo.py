"""Build a model zoo: ``python scripts/build_zoo.py zoo=digits_mlp n_runs=200 out=zoos/x.h5``.

Killed and started again with the same arguments, it resumes where it stopped.
"""

import hydra
from omegaconf import DictConfig

from weightspace.zoo.build import build_from_config


@hydra.main(config_path="../configs", config_name="build_zoo", version_base="1.3")
def main(cfg: DictConfig) -> None:
    path = build_from_config(cfg)
    print(f"zoo written to {path}")


if __name__ == "__main__":
    main()
