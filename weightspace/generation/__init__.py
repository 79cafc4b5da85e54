"""Networks from a trained zoo generator, and judging them: :func:`sample_rows`,
:func:`as_modules`, :func:`write_samples`, :func:`condition_sweep`, and
:func:`memorisation_report`, which tells new networks from training networks seen again
(:mod:`weightspace.generation.memorisation`); :func:`judge` runs both on a checkpoint."""

from weightspace.generation.memorisation import (
    MemorisationReport,
    memorisation_report,
    nearest_training,
    tensor_noise,
)
from weightspace.generation.sampling import (
    as_modules,
    condition_sweep,
    judge,
    load_generator,
    sample_rows,
    write_samples,
)

__all__ = ["MemorisationReport", "as_modules", "condition_sweep", "judge", "load_generator",
           "memorisation_report", "nearest_training", "sample_rows", "tensor_noise",
           "write_samples"]
