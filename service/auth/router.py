"""``/v1/tokens``: API tokens, for admins."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from service.auth import repository, service
from service.auth.dependencies import ADMIN
from service.auth.schemas import TokenCreate, TokenCreated, TokenOut
from service.deps import SessionDep
from service.errors import NotFound
from service.pagination import Page, PageDep

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


@router.post("", status_code=status.HTTP_201_CREATED, **ADMIN)
async def create_token(body: TokenCreate, session: SessionDep) -> TokenCreated:
    row, plain = await service.create(
        session=session, name=body.name, scope=body.scope, expires_at=body.expires_at
    )
    return TokenCreated.model_validate({**row.model_dump(), "token": plain})


@router.get("", **ADMIN)
async def list_tokens(
    session: SessionDep, page: PageDep, include_revoked: bool = False
) -> Page[TokenOut]:
    rows = await repository.list_page(session, page, include_revoked=include_revoked)
    rows, next_cursor = page.split(rows, lambda t: t.id)
    return Page(items=[TokenOut.model_validate(t) for t in rows], next_cursor=next_cursor)


@router.get("/{token_id}", **ADMIN)
async def get_token(token_id: uuid.UUID, session: SessionDep) -> TokenOut:
    row = await repository.get(session, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    return TokenOut.model_validate(row)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT, **ADMIN)
async def revoke_token(token_id: uuid.UUID, session: SessionDep) -> Response:
    await service.revoke(session=session, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
