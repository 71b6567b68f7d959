"""What agents report: each bound port's actual state, each host's foreign/vanished/releasing
devices.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "port_actual",
        sa.Column("port_id", sa.String(36), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.String(2048)),
        sa.Column("waiting_for", sa.String(1024)),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("observed", sa.JSON(), nullable=False),
        sa.Column("desired_generation", sa.Integer(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE",
                                name="fk_port_actual_port_id_ports"),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], ondelete="CASCADE",
                                name="fk_port_actual_host_id_hosts"),
        sa.PrimaryKeyConstraint("port_id", name="pk_port_actual"),
    )
    op.create_index("ix_port_actual_host_id", "port_actual", ["host_id"])
    op.create_table(
        "host_actual",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("desired_generation", sa.Integer(), nullable=False),
        sa.Column("foreign", sa.JSON(), nullable=False),
        sa.Column("vanished", sa.JSON(), nullable=False),
        sa.Column("releasing", sa.JSON(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], ondelete="CASCADE",
                                name="fk_host_actual_host_id_hosts"),
        sa.PrimaryKeyConstraint("host_id", name="pk_host_actual"),
    )


def downgrade() -> None:
    op.drop_table("host_actual")
    op.drop_index("ix_port_actual_host_id", "port_actual")
    op.drop_table("port_actual")
