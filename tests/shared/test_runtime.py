"""A service run in the foreground (`shared.runtime`): what its start built is left out of later garbage
collections, a failed start is cleaned up and reported, SIGTERM stops it."""

from __future__ import annotations

import asyncio
import gc
import os
import signal

import pytest

from shared.runtime import serve_until_signalled


class _Built:
    """Something a start builds and keeps (an instance of a class: an object the collector tracks)."""


def _collected(objects: list[object]) -> list[bool]:
    """For each object, whether the collector still walks it (`gc.get_objects` leaves out the frozen ones)."""
    walked = {id(tracked) for tracked in gc.get_objects()}
    return [id(candidate) in walked for candidate in objects]


class _Service:
    """Records whether what it built at its start is still walked by the collector, during the start and once it
    runs; then stops itself with a SIGTERM, as systemd would."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.built: list[_Built] = []
        self.walked_during_start: list[bool] = []
        self.walked_while_running: list[bool] = []
        self.stopped = False

    async def start(self) -> None:
        self.built = [_Built() for _ in range(3)]
        self.walked_during_start = _collected(self.built)
        if self.fail:
            raise RuntimeError("the database is unreachable")
        asyncio.get_running_loop().call_later(0.05, self._running)

    def _running(self) -> None:
        self.walked_while_running = _collected(self.built)
        # The loop's handler must be there, or this SIGTERM would end the whole test session.
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        os.kill(os.getpid(), signal.SIGTERM)

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def unfrozen():
    """The test process's heap as it was: a frozen object would otherwise stay out of its collections."""
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_what_the_start_built_is_frozen_once_started(unfrozen) -> None:
    service = _Service()
    await asyncio.wait_for(serve_until_signalled(service, "test"), 10)

    assert service.stopped
    assert service.walked_during_start == [True, True, True]
    # Once started, what the start built is in the permanent generation: no collection walks it any more.
    assert service.walked_while_running == [False, False, False]
    assert gc.get_freeze_count() > 0


async def test_a_failed_start_is_stopped_and_reported_without_freezing(unfrozen) -> None:
    service = _Service(fail=True)
    with pytest.raises(RuntimeError, match="unreachable"):
        await serve_until_signalled(service, "test")

    assert service.stopped
    assert service.walked_during_start == [True, True, True]
    assert gc.get_freeze_count() == 0
