"""Provider pages grouped into pages of the engine's size.

GitHub serves 100 issues a request and Linear 250 a query; the engine commits each page it
is given in one transaction, whose cost is mostly fixed (lookups, parent links, derived
state). A connector with small provider pages hands the engine groups of about
``GROUP_ITEMS`` items instead, each with the cursor of the last provider page in it, so a
killed sync still resumes from its last committed page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from connectors.models import Page

GROUP_ITEMS = 1000


def merged(pages: list[Page]) -> Page:
    """Pages as one, with the last cursor given. An item repeated at a page boundary (lists
    restarted from the last update time repeat one) stays repeated: the engine stores the
    last copy of each item in a page, and counts it once."""
    if len(pages) == 1:
        return pages[0]
    cursor = next((p.cursor for p in reversed(pages) if p.cursor is not None), None)
    return Page(items=tuple(item for page in pages for item in page.items), cursor=cursor)


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
