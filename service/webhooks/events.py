"""The outbound event types (DESIGN section 6)."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    epic_unlinked = "epic.unlinked"
    epic_linked = "epic.linked"
    key_result_progress_changed = "key_result.progress_changed"
    key_result_stale = "key_result.stale"
    team_strategic_share_below_target = "team.strategic_share_below_target"
    sync_completed = "sync.completed"
    sync_failed = "sync.failed"
    webhook_test = "webhook.test"
