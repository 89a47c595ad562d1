"""The Jira connector: Cloud and Data Center, with the fewest calls each allows.

Cloud: ids through the enhanced search (5,000 a page when only ids are asked for), bodies
through ``issue/bulkfetch`` and changelogs through ``changelog/bulkfetch`` (1,000 issues a
call each); a chunk's two calls go at once, beside the search for the next page of ids.
Data Center: ``/search`` with ``startAt`` and the changelog expanded inline, restarted from
the checkpoint before passing the 10,000-result window.

Both search up to the minute the sync started in, so an edit during the sync can only take
an issue out of the search, never move one within it; a last search takes what changed
from that minute on. An issue leaving the search moves every later one up a place, so an
offset page boundary can pass over one. Data Center sees it as a smaller total and reads
the passed places again. Cloud's tokens are opaque and it sends no total, so before a full
sync marks deleted what it did not see, ``recheck`` reads those issues back by id.

The cursor is the update time up to which every issue is stored. Searches are bounded by
the sync's start and ordered by (updated, key); an issue edited during the sync comes back
from the bulk fetch with a newer time than its place in the order, so the checkpoint is
taken only from issues not touched since the start, whose time is their place. Resuming or
syncing incrementally re-reads from one minute before the checkpoint (JQL has minute
resolution); the overlap is harmless because the engine's upserts are idempotent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from connectors.base import Connector
from connectors.errors import Permanent
from connectors.jira import webhooks
from connectors.jira.client import JiraClient
from connectors.jira.config import JiraConfig, JiraCredentials
from connectors.jira.mapping import FieldIds, normalize, started_at
from connectors.models import Page, WorkItem
from connectors.prefetch import ahead
from connectors.webhooks import WebhookEvent, WebhookRequest

SEARCH = "/rest/api/3/search/jql"
ID_PAGE = 5000
BODY_CHUNK = 1000
DC_PAGE = 1000
DC_WINDOW = 10_000
OVERLAP = timedelta(minutes=1)
STORY_POINTS_SCHEMA = "com.pyxis.greenhopper.jira:jsw-story-points"
EPIC_LINK_SCHEMA = "com.pyxis.greenhopper.jira:gh-epic-link"
PARENT_LINK_SCHEMA = "com.atlassian.jpo:jpo-custom-field-parent"
STORY_POINTS_NAMES = frozenset({"story points", "story point estimate"})

A = TypeVar("A")
B = TypeVar("B")


@dataclass(frozen=True)
class Site:
    """What a sync learns about the Jira site before fetching."""

    cloud: bool
    zone: ZoneInfo
    ids: FieldIds
    in_progress: frozenset[str]

    @property
    def fields_token(self) -> str:
        return "|".join(
            f or "" for f in (self.ids.story_points, self.ids.epic_link, self.ids.parent_link)
        )


def _schema_field(fields: Iterable[dict[str, Any]], custom: str) -> str | None:
    return next((f["id"] for f in fields if (f.get("schema") or {}).get("custom") == custom), None)


def _named_field(fields: Iterable[dict[str, Any]], names: frozenset[str]) -> str | None:
    return next(
        (
            f["id"]
            for f in fields
            if str(f.get("name", "")).lower() in names
            and (f.get("schema") or {}).get("type") == "number"
        ),
        None,
    )


def jql_time(moment: datetime, zone: ZoneInfo) -> str:
    """A JQL date literal: minute resolution, in the searching user's time zone."""
    return moment.astimezone(zone).strftime("%Y/%m/%d %H:%M")


def build_jql(scope: str, since: datetime | None, until: datetime, zone: ZoneInfo) -> str:
    clauses = [f"({scope.strip()})"] if scope.strip() else []
    if since is not None:
        clauses.append(f'updated >= "{jql_time(since - OVERLAP, zone)}"')
    # Rounded up: issues edited within the start's minute are fetched, not left behind.
    ceiling = _minute(until) + timedelta(minutes=1)
    clauses.append(f'updated <= "{jql_time(ceiling, zone)}"')
    return " AND ".join(clauses) + " ORDER BY updated ASC, key ASC"


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def windows(
    since: datetime | None, started: datetime
) -> tuple[tuple[datetime | None, datetime | None], ...]:
    """The searches of a sync as (since, ceiling): everything up to the minute before the
    start, then what changed from the start's minute on (its ceiling: when it begins)."""
    return (since, started - timedelta(minutes=1)), (_minute(started) + OVERLAP, None)


def encode_cursor(updated: datetime, site: Site) -> str:
    return json.dumps({"updated": updated.isoformat(), "fields": site.fields_token})


def decode_cursor(cursor: str | None, site: Site) -> datetime | None:
    """The resume point, or None (fetch everything) when the field set has changed since."""
    if not cursor:
        return None
    data = json.loads(cursor)
    if data.get("fields") != site.fields_token:
        return None
    return datetime.fromisoformat(data["updated"])


def checkpoint(items: Sequence[WorkItem], started: datetime) -> datetime | None:
    untouched = [i.updated_at for i in items if i.updated_at <= started]
    return max(untouched) if untouched else None


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both results, once both calls have ended: neither is left running in its thread (on
    a session about to be closed) when the other fails; the first failure is raised."""
    results = await asyncio.gather(first, second, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results[0], results[1]  # type: ignore[return-value]


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(frozen=True)
class Sessions:
    """One client a stream of calls: a requests session is not to be shared between threads,
    and Cloud searches, fetches bodies and fetches changelogs at once."""

    search: JiraClient
    bodies: JiraClient
    changelogs: JiraClient

    @classmethod
    def open(cls, make: Callable[[], JiraClient]) -> Sessions:
        return cls(make(), make(), make())

    @property
    def calls(self) -> int:
        return self.search.calls + self.bodies.calls + self.changelogs.calls

    def close(self) -> None:
        for client in (self.search, self.bodies, self.changelogs):
            client.close()


class JiraConnector(Connector[JiraConfig, JiraCredentials]):
    provider: ClassVar[str] = "jira"
    config_model: ClassVar[type[BaseModel]] = JiraConfig
    credentials_model: ClassVar[type[BaseModel]] = JiraCredentials
    _site: Site | None = None  # what the last fetch discovered; recheck reuses it

    def verify_webhook(self, request: WebhookRequest, secret: str) -> None:
        webhooks.verify(request, secret)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvent:
        return webhooks.parse(request)

    def _client(self) -> JiraClient:
        return JiraClient(self.config, self.credentials)

    async def check(self) -> None:
        client = self._client()
        try:
            await asyncio.to_thread(client.myself)
        finally:
            self.stats.api_calls += client.calls
            client.close()

    async def discover(self, sessions: Sessions) -> Site:
        """Deployment, time zone, custom field ids and in-progress statuses: a few calls, on
        the three sessions at once (two rounds instead of four or five)."""
        config = self.config

        def site_wide() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            return sessions.search.server_info(), sessions.search.get("/rest/api/2/status")

        def fields() -> tuple[list[dict[str, Any]], str | None]:
            board_points = None
            if config.story_points_field is None and config.board_id is not None:
                board = sessions.changelogs.get(
                    f"/rest/agile/1.0/board/{config.board_id}/configuration"
                )
                board_points = ((board.get("estimation") or {}).get("field") or {}).get("fieldId")
            return sessions.changelogs.fields(), board_points

        (info, statuses), (me, (catalogue, board_points)) = await both(
            asyncio.to_thread(site_wide),
            both(asyncio.to_thread(sessions.bodies.myself), asyncio.to_thread(fields)),
        )
        cloud = str(info.get("deploymentType", "")).lower() == "cloud"
        try:
            zone = ZoneInfo(me.get("timeZone") or "UTC")
        except ZoneInfoNotFoundError:
            zone = ZoneInfo("UTC")
        story_points = (
            config.story_points_field
            or board_points
            or _schema_field(catalogue, STORY_POINTS_SCHEMA)
            or _named_field(catalogue, STORY_POINTS_NAMES)
        )
        # Cloud names every parent in `parent`; Data Center keeps the older link fields.
        epic_link = config.epic_link_field or (
            None if cloud else _schema_field(catalogue, EPIC_LINK_SCHEMA)
        )
        parent_link = config.parent_link_field or (
            None if cloud else _schema_field(catalogue, PARENT_LINK_SCHEMA)
        )
        in_progress = frozenset(
            str(s["id"])
            for s in statuses
            if (s.get("statusCategory") or {}).get("key") == "indeterminate"
        )
        return Site(cloud, zone, FieldIds(story_points, epic_link, parent_link), in_progress)

    async def fetch(self, cursor: str | None) -> AsyncGenerator[Page, None]:
        sessions = await asyncio.to_thread(Sessions.open, self._client)
        counted = 0

        def count() -> None:
            nonlocal counted
            self.stats.api_calls += sessions.calls - counted
            counted = sessions.calls

        try:
            site = self._site = await self.discover(sessions)
            started = datetime.now(UTC)
            since = decode_cursor(cursor, site)
            pages = ahead(
                self._cloud(sessions, site, since, started)
                if site.cloud
                else self._datacenter(sessions.search, site, since, started)
            )
            async for items in pages:
                count()
                mark = checkpoint(items, started)
                yield Page(items=tuple(items), cursor=encode_cursor(mark, site) if mark else None)
        finally:
            count()
            sessions.close()

    def _normalize(self, raw: dict[str, Any], site: Site, histories: Iterable[Any]) -> WorkItem:
        return normalize(
            raw,
            site=self.config.url,
            ids=site.ids,
            team_map=self.config.team_map,
            started=started_at(histories, site.in_progress),
        )

    async def _cloud(
        self, sessions: Sessions, site: Site, since: datetime | None, started: datetime
    ) -> AsyncIterator[list[WorkItem]]:
        for window_since, ceiling in windows(since, started):
            jql = build_jql(self.config.jql, window_since, ceiling or datetime.now(UTC), site.zone)
            async for items in self._cloud_search(sessions, site, jql):
                yield items

    async def _cloud_search(
        self, sessions: Sessions, site: Site, jql: str
    ) -> AsyncIterator[list[WorkItem]]:
        def search(token: str | None) -> Any:
            body: dict[str, Any] = {"jql": jql, "fields": ["id"], "maxResults": ID_PAGE}
            if token:
                body["nextPageToken"] = token
            return sessions.search.post(SEARCH, body)

        found = await asyncio.to_thread(search, None)
        following: asyncio.Future[Any] | None = None
        try:
            while True:
                token = found.get("nextPageToken")
                if not found.get("isLast", True) and token:
                    # The next page of ids is searched for while this one's bodies come.
                    following = asyncio.ensure_future(asyncio.to_thread(search, token))
                ids = [str(issue["id"]) for issue in found.get("issues", ())]
                for chunk in _chunks(ids, BODY_CHUNK):
                    # Bodies and changelogs at once: against a remote Jira, where every
                    # call waits on the network and on Jira, this took a 10k sync from 8.5
                    # to 5.5 s at 0.25 s an answer (bench/RESULTS.md).
                    fetched, histories = await both(
                        asyncio.to_thread(self._bulkfetch, sessions.bodies, site, chunk),
                        asyncio.to_thread(self._changelogs, sessions.changelogs, chunk),
                    )
                    yield await asyncio.to_thread(self._bodies, site, chunk, fetched, histories)
                if following is None:
                    return
                found, following = await following, None
        finally:
            if following is not None:  # stopped early: its answer is not wanted
                following.cancel()

    async def recheck(self, external_ids: Sequence[str]) -> AsyncGenerator[Page, None]:
        """The issues among these that are still there and in scope, read now (Cloud: its
        id pages can pass over one; Data Center reads passed places back as it goes)."""
        if self._site is not None and not self._site.cloud:
            return
        sessions = await asyncio.to_thread(Sessions.open, self._client)
        try:
            site = self._site or await self.discover(sessions)
            if not site.cloud:
                return
            for chunk in _chunks(external_ids, BODY_CHUNK):
                fetched = await asyncio.to_thread(self._bulkfetch, sessions.bodies, site, chunk)
                there = [str(issue["id"]) for issue in fetched.get("issues", ())]
                if there and self.config.jql.strip():
                    # An issue can also leave the connection's scope (moved to a project
                    # outside its JQL): that one is gone too.
                    there = await asyncio.to_thread(self._in_scope, sessions.search, there)
                if there:
                    histories = await asyncio.to_thread(
                        self._changelogs, sessions.changelogs, there
                    )
                    items = self._bodies(site, there, fetched, histories)
                    yield Page(items=tuple(items), cursor=None)
        finally:
            self.stats.api_calls += sessions.calls
            sessions.close()

    def _in_scope(self, client: JiraClient, ids: Sequence[str]) -> list[str]:
        jql = f"({self.config.jql.strip()}) AND issue in ({', '.join(ids)})"
        found = client.post(SEARCH, {"jql": jql, "fields": ["id"], "maxResults": ID_PAGE})
        kept = {str(issue["id"]) for issue in found.get("issues", ())}
        return [i for i in ids if i in kept]

    def _bulkfetch(self, client: JiraClient, site: Site, ids: Sequence[str]) -> Any:
        body = {"issueIdsOrKeys": list(ids), "fields": site.ids.requested()}
        return client.post("/rest/api/3/issue/bulkfetch", body)

    def _bodies(
        self,
        site: Site,
        ids: Sequence[str],
        fetched: dict[str, Any],
        histories: dict[str, list[Any]],
    ) -> list[WorkItem]:
        by_id = {str(issue["id"]): issue for issue in fetched.get("issues", ())}
        # Search order, not the bulk fetch's; an issue deleted in between is simply absent.
        return [self._normalize(by_id[i], site, histories.get(i, ())) for i in ids if i in by_id]

    def _changelogs(self, client: JiraClient, ids: Sequence[str]) -> dict[str, list[Any]]:
        histories: dict[str, list[Any]] = {}
        token: str | None = None
        while True:
            body: dict[str, Any] = {
                "issueIdsOrKeys": list(ids),
                "fieldIds": ["status"],
                "maxResults": BODY_CHUNK,
            }
            if token:
                body["nextPageToken"] = token
            page = client.post("/rest/api/3/changelog/bulkfetch", body)
            for log in page.get("issueChangeLogs", ()):
                histories.setdefault(str(log["issueId"]), []).extend(log.get("changeHistories", ()))
            token = page.get("nextPageToken")
            if not token:
                return histories

    async def _datacenter(
        self, client: JiraClient, site: Site, since: datetime | None, started: datetime
    ) -> AsyncIterator[list[WorkItem]]:
        fields = ",".join(site.ids.requested())

        def search(jql: str, start_at: int, limit: int = DC_PAGE) -> Any:
            params = {"jql": jql, "startAt": start_at, "maxResults": limit, "fields": fields,
                      "expand": "changelog"}  # fmt: skip
            return client.get("/rest/api/2/search", params)

        def items_of(found: Any) -> list[WorkItem]:
            return [
                self._normalize(raw, site, (raw.get("changelog") or {}).get("histories", ()))
                for raw in found.get("issues", [])
            ]

        # An edit during the sync can only take an issue out of the search (module
        # docstring), which shows as a smaller total.
        last_mark = since
        for window_since, ceiling in windows(since, started):
            start_at = 0
            total: int | None = None
            until = ceiling or datetime.now(UTC)
            while True:
                jql = build_jql(self.config.jql, window_since, until, site.zone)
                found = await asyncio.to_thread(search, jql, start_at)
                items = items_of(found)
                now_total = int(found.get("total", 0))
                if total is not None and 0 < start_at and now_total < total:
                    # Issues before this page left the search, and those after them moved
                    # up as many places: read the places this page's start passed over (a
                    # repeat of an issue already stored is harmless).
                    missed: list[WorkItem] = []
                    for at in range(max(0, start_at - (total - now_total)), start_at, DC_PAGE):
                        limit = min(DC_PAGE, start_at - at)
                        missed += items_of(await asyncio.to_thread(search, jql, at, limit))
                    items = missed + items
                total = now_total
                yield items
                last_mark = checkpoint(items, started) or last_mark
                start_at += len(found.get("issues", []))
                if not found.get("issues") or start_at >= now_total:
                    break
                if start_at + DC_PAGE > DC_WINDOW:
                    # Slice by date: a new search from what is stored keeps startAt low.
                    if last_mark is None or (
                        window_since is not None
                        and jql_time(last_mark - OVERLAP, site.zone)
                        == jql_time(window_since - OVERLAP, site.zone)
                    ):
                        raise Permanent(
                            "more than 10,000 issues share one minute of update time; "
                            "narrow the JQL"
                        )
                    window_since, start_at, total = last_mark, 0, None
