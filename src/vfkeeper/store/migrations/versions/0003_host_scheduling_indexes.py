"""Indexes that let a controller read every host's generation and last heartbeat cheaply.

Each boot reads the sum of the hosts' generations and the hosts whose agent is silent. Without
these indexes SQLite reads every host row to get there, including the stored inventory document
(tens of KiB a host, and those columns sit behind it); with them it scans a small index.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_hosts_generation", "hosts", ["generation"])
    op.create_index("ix_hosts_last_seen_at", "hosts", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_hosts_last_seen_at", "hosts")
    op.drop_index("ix_hosts_generation", "hosts")
