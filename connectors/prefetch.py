"""Run a page iterator ahead of its consumer, so the next page downloads while this one is
stored. The producer stays one sequence of requests (a requests session is not shared
between threads); only its timing overlaps the consumer's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass
class _Failed:
    error: BaseException


_END = object()


async def ahead(pages: AsyncIterator[T], depth: int = 1) -> AsyncIterator[T]:
    """Yield what ``pages`` yields, with up to ``depth`` pages fetched in advance."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=depth)

    async def produce() -> None:
        try:
            async for page in pages:
                await queue.put(page)
            await queue.put(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, which raises it as its own
            await queue.put(_Failed(exc))

    producer = asyncio.create_task(produce())
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
