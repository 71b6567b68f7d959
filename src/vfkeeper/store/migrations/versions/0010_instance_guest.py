"""What an instance's guest is told at boot: host name, SSH public keys, user data.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_guest",
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("hostname", sa.String(253)),
        sa.Column("public_keys", sa.JSON(), nullable=False),
        sa.Column("user_data", sa.Text()),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], ondelete="CASCADE",
                                name="fk_instance_guest_instance_id_instances"),
        sa.PrimaryKeyConstraint("instance_id", name="pk_instance_guest"),
    )


def downgrade() -> None:
    op.drop_table("instance_guest")
