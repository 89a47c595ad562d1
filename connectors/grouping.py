"""Provider pages grouped into pages of the engine's size.

GitHub serves 100 issues a request and Linear 250 a query; the engine commits each page it
is given in one transaction, whose cost is mostly fixed (lookups, parent links, derived
state). A connector with small provider pages hands the engine groups of about
``GROUP_ITEMS`` items instead, each with the cursor of the last provider page in it, so a
killed sync still resumes from its last committed page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from connectors.models import Page, WorkItem

GROUP_ITEMS = 1000


def merged(pages: list[Page]) -> Page:
    """Pages as one: each item once (its latest copy; lists restarted from the last update
    time repeat an item at page boundaries) and the last cursor given."""
    if len(pages) == 1:
        return pages[0]
    latest: dict[str, WorkItem] = {}
    for page in pages:
        for item in page.items:
            latest.pop(item.external_id, None)
            latest[item.external_id] = item
    cursor = next((p.cursor for p in reversed(pages) if p.cursor is not None), None)
    return Page(items=tuple(latest.values()), cursor=cursor)


async def grouped(pages: AsyncIterator[Page], size: int = GROUP_ITEMS) -> AsyncIterator[Page]:
    batch: list[Page] = []
    count = 0
    async for page in pages:
        batch.append(page)
        count += len(page.items)
        if count >= size:
            yield merged(batch)
            batch, count = [], 0
    if batch:
        yield merged(batch)
