"""``PruneReport``: what a pruning did -- MACs, parameters and widths before and after, and
accuracies along the way."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PruneReport:
    """What a prune did: sizes and widths before and after, and accuracies along the way.

    Args:
        macs_before: multiply-accumulates of one forward before pruning.
        macs_after: the same after.
        params_before: parameters before.
        params_after: parameters after.
        widths_before: channels per prunable group before.
        widths_after: channels per group after.
        accuracy_before: accuracy of the original network (with data).
        accuracy_edited: accuracy after the metanetwork's edit, before pruning.
        accuracy_pruned: accuracy right after pruning.
        accuracy_after: accuracy after fine-tuning.
        importance: the channel importance that was used.
        ratio: the pruning ratio the search found (``ws.prune(..., ratio=r)`` prunes at it
            again without searching).
        passes: pruning passes the search took (1 when the ratio was given).
        notes: anything the user should know (e.g. a ratio that could not be met).
    """

    macs_before: float
    macs_after: float
    params_before: int
    params_after: int
    widths_before: dict[str, int]
    widths_after: dict[str, int]
    accuracy_before: float | None = None
    accuracy_edited: float | None = None  # after the edit (and finetune_edited), unpruned
    accuracy_pruned: float | None = None  # right after pruning, before any fine-tuning
    accuracy_after: float | None = None  # the returned network's
    importance: str = "group_l2"
    ratio: float | None = None
    passes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        """Achieved MAC speed-up, ``MACs before / MACs after``."""
        return self.macs_before / self.macs_after

    def __str__(self) -> str:
        how = self.importance + ("" if self.ratio is None else
                                 f", ratio {self.ratio:.4g} after {self.passes} passes")
        lines = [f"speed-up {self.speedup:.2f}x: MACs {self.macs_before:,.0f} -> "
                 f"{self.macs_after:,.0f}, parameters {self.params_before:,} -> "
                 f"{self.params_after:,} ({how})"]
        for name, before in self.widths_before.items():
            lines.append(f"  {name}: {before} -> {self.widths_after.get(name, 0)}")
        for label, acc in (("accuracy before", self.accuracy_before),
                           ("accuracy after the metanetwork's edit", self.accuracy_edited),
                           ("accuracy right after pruning", self.accuracy_pruned),
                           ("accuracy after", self.accuracy_after)):
            if acc is not None:
                lines.append(f"{label}: {acc:.4f}")
        return "\n".join(lines + self.notes)
