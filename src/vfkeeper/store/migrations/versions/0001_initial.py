"""The first schema: hosts, devices, device specs, networks, instances, ports, allocations,
tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(1024)),
        sa.Column("inventory", sa.JSON()),
        sa.Column("inventory_schema_version", sa.Integer()),
        sa.Column("inventory_updated_at", _TZ),
        sa.Column("last_seen_at", _TZ),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hosts"),
        sa.UniqueConstraint("name", name="uq_hosts_name"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(16), nullable=False),
        sa.Column("dev_type", sa.String(16), nullable=False),
        sa.Column("parent_addr", sa.String(16)),
        sa.Column("vf_index", sa.Integer()),
        sa.Column("vendor_id", sa.String(8)),
        sa.Column("product_id", sa.String(8)),
        sa.Column("numa_node", sa.Integer()),
        sa.Column("physical_network", sa.String(255)),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("problem", sa.String(1024)),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name="fk_devices_host_id_hosts", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("host_id", "address", name="uq_devices_host_id_address"),
    )
    op.create_index("ix_devices_host_id", "devices", ["host_id"])
    op.create_table(
        "device_spec_sets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_device_spec_sets"),
        sa.UniqueConstraint("scope", name="uq_device_spec_sets_scope"),
    )
    op.create_table(
        "networks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("physical_network", sa.String(255), nullable=False),
        sa.Column("segmentation_type", sa.String(8), nullable=False),
        sa.Column("segmentation_id", sa.Integer()),
        sa.Column("pkey_full_membership", sa.Boolean(), nullable=False),
        sa.Column("mtu", sa.Integer(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_networks"),
        sa.UniqueConstraint("name", name="uq_networks_name"),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("host_id", sa.Integer()),
        sa.Column("numa_policy", sa.String(16), nullable=False),
        sa.Column("host_hint", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_instances"),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name="fk_instances_host_id_hosts"),
    )
    op.create_index("ix_instances_host_id", "instances", ["host_id"])
    op.create_table(
        "ports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("network_id", sa.String(36), nullable=False),
        sa.Column("vnic_type", sa.String(16), nullable=False),
        sa.Column("mac", sa.String(17)),
        sa.Column("guid", sa.String(18)),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column("port_security", sa.Boolean(), nullable=False),
        sa.Column("qos_min_kbps", sa.Integer()),
        sa.Column("qos_max_kbps", sa.Integer()),
        sa.Column("link_state", sa.String(8), nullable=False),
        sa.Column("instance_id", sa.String(36)),
        sa.Column("host_id", sa.Integer()),
        sa.Column("vif_type", sa.String(32)),
        sa.Column("vif_details", sa.JSON(), nullable=False),
        sa.Column("binding_profile", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ports"),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name="fk_ports_network_id_networks",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], name="fk_ports_instance_id_instances"
        ),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name="fk_ports_host_id_hosts"),
        sa.UniqueConstraint("mac", name="uq_ports_mac"),
        sa.UniqueConstraint("guid", name="uq_ports_guid"),
    )
    op.create_index("ix_ports_network_id", "ports", ["network_id"])
    op.create_index("ix_ports_instance_id", "ports", ["instance_id"])
    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("port_id", sa.String(36), nullable=False),
        sa.Column("desired", sa.JSON(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_allocations"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_allocations_device_id_devices",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name="fk_allocations_host_id_hosts"),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], name="fk_allocations_instance_id_instances"
        ),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], name="fk_allocations_port_id_ports"),
        sa.UniqueConstraint("request_id", name="uq_allocations_request_id"),
        sa.UniqueConstraint("device_id", name="uq_allocations_device_id"),
        sa.UniqueConstraint("port_id", name="uq_allocations_port_id"),
    )
    op.create_index("ix_allocations_host_id", "allocations", ["host_id"])
    op.create_index("ix_allocations_instance_id", "allocations", ["instance_id"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(300), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
    )


def downgrade() -> None:
    for table in (
        "tokens", "allocations", "ports", "instances", "networks", "device_spec_sets",
        "devices", "hosts",
    ):
        op.drop_table(table)
