"""Devices freed by the controller that their host's agent has not yet given back
(``device_releases``): never handed out while a row exists.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_releases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("port_id", sa.String(36), nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="RESTRICT",
                                name="fk_device_releases_device_id_devices"),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"],
                                name="fk_device_releases_host_id_hosts"),
        sa.PrimaryKeyConstraint("id", name="pk_device_releases"),
        sa.UniqueConstraint("device_id", name="uq_device_releases_device_id"),
    )
    op.create_index("ix_device_releases_host_id", "device_releases", ["host_id"])


def downgrade() -> None:
    op.drop_index("ix_device_releases_host_id", "device_releases")
    op.drop_table("device_releases")
