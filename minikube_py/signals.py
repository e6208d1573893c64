"""Turn SIGINT/SIGTERM into cancellation of the main task, for an orderly shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def until_signalled(main: Coroutine[Any, Any, T]) -> T | None:
    """Run ``main``; on SIGINT or SIGTERM cancel it and return None once it has unwound."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        return await task
    except asyncio.CancelledError:
        if stopped:
            return None
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
