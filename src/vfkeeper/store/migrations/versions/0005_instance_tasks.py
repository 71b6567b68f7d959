"""Instance lifecycle tasks (live migration, suspend/resume) and the agents' migration URIs.

* ``instances``: ``task_id`` (the running task, which agents' reports name), ``target_host_id``
  (a migration's destination), ``task_detail`` (what the agents said of it: the destination's
  readiness and its VF netdevs, what each side waits for), ``last_error``.
* ``allocations.incoming``: a device reserved on a migration's destination for the port, next
  to the one it holds on the source. A port holds at most one device of each kind, so the
  unique key on ``port_id`` becomes one on ``(port_id, incoming)``. ``binding``: the port's
  binding once the incoming device becomes its own.
* ``hosts.migration_uri``: the libvirt URI peers migrate to, as the host's agent reports it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("task_id", sa.String(36)))
        batch.add_column(sa.Column("target_host_id", sa.Integer()))
        batch.add_column(sa.Column("task_detail", sa.JSON()))
        batch.add_column(sa.Column("last_error", sa.String(2048)))
        batch.create_foreign_key("fk_instances_target_host_id_hosts", "hosts",
                                 ["target_host_id"], ["id"])
        batch.create_index("ix_instances_target_host_id", ["target_host_id"])
    with op.batch_alter_table("allocations") as batch:
        batch.add_column(sa.Column("incoming", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("binding", sa.JSON()))
        batch.drop_constraint("uq_allocations_port_id", type_="unique")
        batch.create_unique_constraint("uq_allocations_port_id_incoming",
                                       ["port_id", "incoming"])
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("migration_uri", sa.String(1024)))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("migration_uri")
    op.execute(sa.text("DELETE FROM allocations WHERE incoming"))
    with op.batch_alter_table("allocations") as batch:
        batch.drop_constraint("uq_allocations_port_id_incoming", type_="unique")
        batch.create_unique_constraint("uq_allocations_port_id", ["port_id"])
        batch.drop_column("binding")
        batch.drop_column("incoming")
    with op.batch_alter_table("instances") as batch:
        batch.drop_index("ix_instances_target_host_id")
        batch.drop_constraint("fk_instances_target_host_id_hosts", type_="foreignkey")
        batch.drop_column("last_error")
        batch.drop_column("task_detail")
        batch.drop_column("target_host_id")
        batch.drop_column("task_id")
