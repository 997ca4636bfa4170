from __future__ import annotations

from django.db import models


class ClockState(models.Model):
    """The movable project clock: one row (id 1) holding the frozen current instant (UTC).

    Read and written only by :mod:`prorata.common.clock`; used when ``PRORATA_CLOCK=movable``.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    instant = models.DateTimeField()

    class Meta:
        verbose_name = "project clock"
        verbose_name_plural = "project clock"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="common_clockstate_single_row"),
        ]

    def __str__(self) -> str:
        return self.instant.isoformat()
