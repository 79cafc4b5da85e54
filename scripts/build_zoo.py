"""Build a model zoo: ``python scripts/build_zoo.py zoo=digits_mlp n_runs=200 out=zoos/x.h5``.

Killed and started again with the same arguments, it resumes where it stopped. An expected
failure is one line on stderr (``WEIGHTSPACE_TRACEBACK=1`` shows the stack).
"""

import sys

import hydra
from omegaconf import DictConfig

from weightspace.error_report import call_reporting_errors
from weightspace.zoo.build import build_from_config


@hydra.main(config_path="../configs", config_name="build_zoo", version_base="1.3")
def main(cfg: DictConfig) -> None:
    def build():
        print(f"zoo written to {build_from_config(cfg)}")

    status = call_reporting_errors(build)
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
