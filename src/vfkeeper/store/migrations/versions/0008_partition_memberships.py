"""InfiniBand partition membership the controller drives the subnet manager from
(``partition_memberships``), and ``networks.pkey_shared``: a PKey network on a partition the
operator owns (vfkeeper records its ports' membership, never changes the partition).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partition_memberships",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pkey", sa.Integer(), nullable=False),
        sa.Column("guid", sa.String(18), nullable=False),
        sa.Column("membership", sa.String(8), nullable=False),
        sa.Column("port_id", sa.String(36)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(2048)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_partition_memberships"),
        sa.UniqueConstraint("pkey", "guid", name="uq_partition_memberships_pkey_guid"),
    )
    for column in ("pkey", "guid", "port_id", "state"):
        op.create_index(f"ix_partition_memberships_{column}", "partition_memberships", [column])
    with op.batch_alter_table("networks") as batch:
        batch.add_column(sa.Column("pkey_shared", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("pkey_shared")
    for column in ("pkey", "guid", "port_id", "state"):
        op.drop_index(f"ix_partition_memberships_{column}", "partition_memberships")
    op.drop_table("partition_memberships")
