"""Hosts remember why the device specs could not be applied to them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("spec_problem", sa.String(2048)))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("spec_problem")
