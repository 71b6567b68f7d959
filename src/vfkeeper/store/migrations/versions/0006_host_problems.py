"""What keeps a host's agent from reconciling: ``host_actual.problems`` (a damaged journal
record, a pass that failed), as the agent's last report says. The scheduler refuses the host
while the list is not empty.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("host_actual") as batch:
        batch.add_column(sa.Column("problems", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("host_actual") as batch:
        batch.drop_column("problems")
