"""Helpers for tests that run the CLI as a child process."""

import signal


def sigint_default() -> None:
    """``preexec_fn`` for children that a test interrupts with SIGINT. A shell that starts the
    test run in the background leaves SIGINT ignored, and the children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
