"""Train a metanetwork: ``python scripts/train.py data.zoo=zoos/x.h5 model=gmn``."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from weightspace.training import run


@hydra.main(config_path="../configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out = cfg.out_dir or HydraConfig.get().runtime.output_dir
    results = run(cfg, out)
    print(f"{cfg.model.name}: test {results['test']}  ({out})")


if __name__ == "__main__":
    main()
