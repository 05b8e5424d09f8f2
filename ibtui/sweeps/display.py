"""What a sweep backend tells the front end: points starting, moving on and ending."""

from __future__ import annotations

from typing import Protocol


class SweepDisplay(Protocol):
    def point_started(self, name: str, total_epochs: int, resumed: bool) -> None: ...

    def point_progress(self, name: str, epoch: int) -> None: ...

    def point_ended(self, name: str, status: str, reason: str | None) -> None: ...

    def message(self, text: str) -> None: ...


class NullDisplay:
    def point_started(self, name: str, total_epochs: int, resumed: bool) -> None:
        pass

    def point_progress(self, name: str, epoch: int) -> None:
        pass

    def point_ended(self, name: str, status: str, reason: str | None) -> None:
        pass

    def message(self, text: str) -> None:
        pass
