"""One error type for everything the lab reports to a person."""

from __future__ import annotations


class LabError(Exception):
    """A failure with a one-line message (what is wrong) and a hint (what to do).

    The CLI prints ``str(err)`` without a traceback; ``--debug`` shows it.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class StepFailed(LabError):
    """A named build or setup step failed; the message names the step."""

    def __init__(self, step: str, message: str, hint: str = "") -> None:
        super().__init__(f"step {step!r} failed: {message}", hint)
        self.step = step
