"""okr-sync: how much of the work teams do rolls up to strategy, and how much is heartbeat."""
