"""What one dispatch pass did: counts, what is left, the errors (``PassResult``).

Apart from the dispatcher, so that a pass with nothing queued reports its
(empty) result without loading the dispatcher and the channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class PassResult:
    sent: int = 0
    failed: int = 0
    expired: int = 0
    pending: int = 0
    next_due: datetime | None = None
    errors: list[str] = field(default_factory=list)
    held: int = 0                      # of the pending: waiting for their groups' quiet hours to end
    held_until: datetime | None = None  # the earliest of those ends

    def as_json(self) -> dict:
        return {"sent": self.sent, "failed": self.failed, "pending": self.pending,
                "expired": self.expired, "held": self.held}

    def summary(self) -> str:
        """``sent 3, failed 0, pending 5 (5 held by quiet hours until 07:00)``."""
        text = f"sent {self.sent}, failed {self.failed}, pending {self.pending}"
        if self.held and self.held_until is not None:
            text += f" ({self.held} held by quiet hours until {self.held_until:%H:%M})"
        return text

    def then(self, later: PassResult) -> PassResult:
        """This pass followed by ``later``: counts added, what is left as ``later`` saw it."""
        return PassResult(self.sent + later.sent, self.failed + later.failed,
                          self.expired + later.expired, later.pending, later.next_due,
                          [*self.errors, *later.errors], later.held, later.held_until)
