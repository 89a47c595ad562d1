"""``okr-sync``: serve, migrate, and manage API tokens.

Each command imports what it runs when it runs: the whole service takes over a second to
import, which ``okr-sync --help`` and ``okr-sync secret-key`` need not wait for.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from service.auth.scopes import Scope

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from service.db import Database
    from service.models import SyncRun
    from service.settings import Settings

app = typer.Typer(
    help="okr-sync: how much of your teams' work serves your OKRs.", no_args_is_help=True
)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
rollups_app = typer.Typer(help="Look after the stored roll-up figures.", no_args_is_help=True)
app.add_typer(rollups_app, name="rollups")

out = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@asynccontextmanager
async def _migrated(settings: Settings) -> AsyncIterator[Database]:
    from service.db import Database
    from service.migrate import upgrade

    db = Database.from_settings(settings)
    try:
        await upgrade(db.engine)
        yield db
    finally:
        await db.dispose()


async def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with _migrated(settings) as db, db.transaction() as session:
        return await work(session)


def _configure_logging(settings: Settings, level: str | None = None) -> None:
    from service import logs

    logs.configure(level or settings.log_level, settings.log_format)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from service.settings import get_settings

    settings = get_settings()
    _configure_logging(settings)

    async def work() -> None:
        async with _migrated(settings):
            pass

    _run(work())
    err.print(f"[green]Database is up to date[/] ({_describe(settings)})")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Migrate the database, then serve the API."""
    import uvicorn

    from service.app import create_app
    from service.auth import service as auth
    from service.settings import get_settings

    settings = get_settings()
    _configure_logging(settings)

    async def prepare(session: AsyncSession) -> str | None:
        if settings.bootstrap_token is not None:
            token = settings.bootstrap_token.get_secret_value()
            await auth.register_bootstrap_token(session=session, token=token)
        return await auth.create_first_admin_token(session=session)

    settings.secret_keys()  # create or check the key before any process needs it
    first_token = _run(_in_transaction(settings, prepare))
    err.print(f"okr-sync on http://{host}:{port} ({_describe(settings)})")
    if first_token is not None:
        err.print(
            "[bold yellow]No API token existed, so here is an admin token. "
            "It is shown this once:[/]"
        )
        out.print(first_token, soft_wrap=True, highlight=False)

    # On SIGTERM uvicorn stops accepting and lets in-flight requests finish, up to this long
    # (inside Kubernetes' default 30 s grace); then the app's jobs drain (service.app).
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level="info", access_log=False,
        timeout_graceful_shutdown=20,
    )  # fmt: skip


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for OKR_SYNC_SECRET_KEY (prepend it to rotate)."""
    from cryptography.fernet import Fernet

    out.print(Fernet.generate_key().decode(), highlight=False)


@app.command()
def sync(
    connection: Annotated[str, typer.Argument(help="The connection's name or id.")],
    full: Annotated[
        bool, typer.Option("--full", help="Fetch everything and mark deleted what is gone.")
    ] = False,
) -> None:
    """Run a sync in the foreground, with progress."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from service.connections import service as connections
    from service.errors import ApiError
    from service.services import open_services
    from service.settings import get_settings
    from service.sync import service as syncs
    from service.sync.engine import SyncEngine
    from service.sync.schemas import SyncMode
    from service.worker.inprocess import InProcessQueue
    from service.worker.retry import RetryLater

    settings = get_settings()
    _configure_logging(settings, "WARNING")  # the progress display is the output
    mode: SyncMode = "full" if full else "incremental"

    async def work() -> SyncRun:
        async with (
            _migrated(settings) as db,
            open_services(settings, queue=InProcessQueue(eager=True), database=db) as services,
        ):
            # A plain transaction: its job is run right here, not sent to a queue.
            async with db.transaction() as session:
                found = await connections.resolver.get(session, connection)
                run = await syncs.request_sync(session=session, connection=found, mode=mode)
            with Progress(
                SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                console=err,
            ) as progress:  # fmt: skip
                task = progress.add_task(f"{mode} sync of {found.name}: 0 items")
                fetched = 0

                def on_page(counts: dict[str, int]) -> None:
                    nonlocal fetched
                    fetched += counts["fetched"]
                    progress.update(
                        task, description=f"{mode} sync of {found.name}: {fetched} items"
                    )

                engine = SyncEngine(services, on_page=on_page)
                while True:
                    try:
                        await engine.run(run.id)
                        break
                    except RetryLater as retry:
                        progress.update(task, description=f"waiting {retry.defer:.0f}s: {retry}")
                        await asyncio.sleep(retry.defer)
            async with db.transaction() as session:
                return await syncs.get_run(session=session, run_id=run.id)

    try:
        result = _run(work())
    except ApiError as exc:
        err.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from exc
    summary = (
        f"{result.status}: fetched {result.fetched}, created {result.created}, updated "
        f"{result.updated}, deleted {result.deleted}, {result.api_calls} API calls"
    )
    if result.status != "succeeded":
        err.print(f"[red]{summary}[/]\n{result.error}")
        raise typer.Exit(1)
    err.print(f"[green]{summary}[/]")


@app.command()
def demo() -> None:
    """Load a sample company's portfolio (teams, OKRs, 386 Jira issues from a CSV export,
    links and rules) and print its roll-up; then `okr-sync serve` to explore it."""
    import httpx
    from rich.table import Table

    from service.app import create_app
    from service.auth import repository as token_repository
    from service.auth import service as auth
    from service.demo import load as demo_data
    from service.settings import get_settings
    from service.worker.inprocess import InProcessQueue

    settings = get_settings()
    _configure_logging(settings, "WARNING")

    async def work() -> tuple[dict[str, Any] | None, dict[str, Any]]:
        async with _migrated(settings) as db:
            async with db.transaction() as session:
                token, plain = await auth.create(session=session, name="demo", scope=Scope.admin)
            application = create_app(settings, database=db, queue=InProcessQueue(eager=True))
            try:
                async with (
                    application.router.lifespan_context(application),
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=application), base_url="http://demo",
                        headers={"Authorization": f"Bearer {plain}"},
                    ) as client,
                ):  # fmt: skip
                    run = None if await demo_data.loaded(client) else await demo_data.load(client)
                    response = await client.get(
                        "/v1/rollups", params={"period": "2026-Q4", "team": demo_data.COMPANY}
                    )
                    return run, response.json()
            finally:
                # Gone, not revoked: `serve` then still greets a new database's first user
                # with an admin token.
                async with db.transaction() as session:
                    await token_repository.delete(session, token.id)

    run, rollup = _run(work())
    if run is None:
        out.print("The demo portfolio is loaded already.")
    else:
        out.print(
            f"Loaded the demo: 4 teams, 2 quarters of OKRs, {run['fetched']} Jira issues "
            f"imported from a CSV export ({run['status']}), links and rules."
        )
    table = Table(title=f"Where {rollup['period']['name']}'s finished work went (items)")
    table.add_column("team")
    for name in ("strategic", "improvement", "heartbeat"):
        table.add_column(name, justify="right")
    for label, scope in [(rollup["team"]["key"], rollup)] + [
        (f"  {child['team']['key']}", child) for child in rollup["teams"]
    ]:
        cells = [f"{c['share']:.0%} ({c['items']})" for c in scope["categories"].values()]
        table.add_row(label, *cells)
    out.print(table)
    for objective in rollup["objectives"]:
        out.print(f"[bold]{objective['title']}[/] ({objective['share']:.0%} of the effort)")
        for kr in objective["key_results"]:
            out.print(f"  {kr['title']}: {kr['effort']:.1f} items, progress {kr['progress']:.0%}")
    err.print(
        "Explore it: `okr-sync serve`, then GET /v1/rollups?period=2026-Q4, "
        "/v1/insights?period=2026-Q4, /v1/work-items/PAY-79 (with a token)."
    )


@app.command()
def worker() -> None:
    """Run an arq worker: syncs and other jobs from Redis (OKR_SYNC_REDIS_URL)."""
    import prometheus_client
    from arq.worker import Worker

    from service.settings import get_settings
    from service.worker.arq_worker import worker_options

    settings = get_settings()
    _configure_logging(settings)
    try:
        options = worker_options(settings)
    except RuntimeError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    if settings.metrics_port is not None:
        prometheus_client.start_http_server(settings.metrics_port)
    Worker(**options).run()


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="Who or what uses the token.")],
    scope: Annotated[Scope, typer.Option(help="read, write or admin.")] = Scope.read,
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, help="Expire after this many days.")
    ] = None,
) -> None:
    """Create a token and print it, once, on standard output."""
    from service.auth import service as auth
    from service.settings import get_settings

    settings = get_settings()
    expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None

    async def work(session: AsyncSession) -> str:
        _, plain = await auth.create(session=session, name=name, scope=scope, expires_at=expires)
        return plain

    plain = _run(_in_transaction(settings, work))
    out.print(plain, soft_wrap=True, highlight=False)
    err.print(f"Created a {scope.value} token {name!r}. It is not shown again.")


@token_app.command("list")
def token_list(
    include_revoked: Annotated[bool, typer.Option(help="Show revoked tokens too.")] = False,
) -> None:
    """List tokens (never their values)."""
    from rich.table import Table

    from service.auth import repository as token_repository
    from service.pagination import MAX_LIMIT, PageParams
    from service.settings import get_settings

    settings = get_settings()
    table = Table("id", "name", "scope", "prefix", "created", "last used", "expires", "revoked")

    async def work(session: AsyncSession) -> None:
        after: uuid.UUID | None = None
        while True:
            page = PageParams(limit=MAX_LIMIT, after=after)
            rows = await token_repository.list_page(session, page, include_revoked=include_revoked)
            for t in rows[:MAX_LIMIT]:
                table.add_row(
                    str(t.id), t.name, t.scope, t.prefix, _when(t.created_at),
                    _when(t.last_used_at), _when(t.expires_at), _when(t.revoked_at),
                )  # fmt: skip
            if len(rows) <= MAX_LIMIT:
                return
            after = rows[MAX_LIMIT - 1].id

    _run(_in_transaction(settings, work))
    out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[uuid.UUID, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: it stops working at once."""
    from service.auth import service as auth
    from service.errors import ApiError
    from service.settings import get_settings

    settings = get_settings()

    async def work(session: AsyncSession) -> None:
        await auth.revoke(session=session, token_id=token_id)

    try:
        _run(_in_transaction(settings, work))
    except ApiError as exc:
        err.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from exc
    err.print(f"Revoked {token_id}.")


@rollups_app.command("check")
def rollups_check(
    repair: Annotated[bool, typer.Option(help="Rebuild the cells if they are wrong.")] = False,
) -> None:
    """Compare the monthly roll-up cells with the leaves they sum; exit 1 if they differ.

    The database's triggers keep them, so they differ only if rows were written around the
    triggers (a restore of one table, a hand edit). --repair rebuilds them from the leaves."""
    from service.rollups import cells
    from service.settings import get_settings

    settings = get_settings()

    async def work(session: AsyncSession) -> list[str]:
        await cells.compact(session)
        found = await cells.drift(session)
        if found and repair:
            await cells.rebuild(session)
        return found

    found = _run(_in_transaction(settings, work))
    for line in found[:20]:
        err.print(line, highlight=False)
    if not found:
        err.print("The roll-up cells match the leaves.")
        return
    more = f" ({len(found) - 20} more)" if len(found) > 20 else ""
    if repair:
        err.print(f"Rebuilt the roll-up cells: {len(found)} keys were wrong{more}.")
        return
    err.print(f"The roll-up cells differ from the leaves at {len(found)} keys{more}.")
    err.print("--repair rebuilds them.")
    raise typer.Exit(1)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _describe(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(settings.effective_database_url)
    return f"database {url.render_as_string(hide_password=True)}"
