"""A chaos or soak run stopped with SIGTERM cleans up as after Ctrl-C."""

import os
import signal
from collections.abc import Iterator

import pytest

from tests.chaos.supervisor import interrupt_on_sigterm


@pytest.fixture
def restored_sigterm() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.mark.usefixtures("restored_sigterm")
def test_sigterm_runs_the_cleanup_of_a_run() -> None:
    interrupt_on_sigterm()
    # Without the handler SIGTERM would end pytest itself.
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
