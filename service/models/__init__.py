"""All tables, on one metadata, so that Alembic sees every one of them."""

from service.models.base import metadata
from service.models.okrs import CheckIn, KeyResult, Objective, Period, Team
from service.models.tokens import ApiToken

__all__ = ["ApiToken", "CheckIn", "KeyResult", "Objective", "Period", "Team", "metadata"]
