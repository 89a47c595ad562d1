"""Dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from service.db import Database
from service.services import Services
from service.settings import Settings

# The dependencies are coroutines even where they need not be: FastAPI runs a plain
# function in its thread pool, a hand-off that cost more than the whole function.


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    return _services(request)


async def get_database(request: Request) -> Database:
    return _services(request).db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed before the response is sent, or rolled back.

    Jobs it asked for are sent after the commit. A GET only reads (its token's last use
    aside), so it reads outside a transaction (``Database.reading``).
    """
    services = _services(request)
    if request.method == "GET":
        async with services.db.reading() as session:
            yield session
        return
    async with services.unit_of_work() as session:
        yield session


async def get_app_settings(request: Request) -> Settings:
    return _services(request).settings


# scope="function": the commit runs when the path operation returns, before the response
# goes out, so a client never sees a 2xx for a write that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ServicesDep = Annotated[Services, Depends(get_services)]
