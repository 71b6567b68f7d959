"""Subnets of networks and the fixed addresses of ports in them.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subnets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("network_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(49), nullable=False),
        sa.Column("gateway_ip", sa.String(45)),
        sa.Column("ipv6_mode", sa.String(8)),
        sa.Column("dns_nameservers", sa.JSON(), nullable=False),
        sa.Column("host_routes", sa.JSON(), nullable=False),
        sa.Column("allocation_pools", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE",
                                name="fk_subnets_network_id_networks"),
        sa.PrimaryKeyConstraint("id", name="pk_subnets"),
    )
    op.create_index("ix_subnets_network_id", "subnets", ["network_id"])
    op.create_table(
        "port_addresses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("port_id", sa.String(36), nullable=False),
        sa.Column("subnet_id", sa.String(36), nullable=False),
        sa.Column("ip_address", sa.String(45), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE",
                                name="fk_port_addresses_port_id_ports"),
        sa.ForeignKeyConstraint(["subnet_id"], ["subnets.id"], ondelete="CASCADE",
                                name="fk_port_addresses_subnet_id_subnets"),
        sa.PrimaryKeyConstraint("id", name="pk_port_addresses"),
        sa.UniqueConstraint("subnet_id", "ip_address",
                            name="uq_port_addresses_subnet_id_ip_address"),
    )
    op.create_index("ix_port_addresses_port_id", "port_addresses", ["port_id"])
    op.create_index("ix_port_addresses_subnet_id", "port_addresses", ["subnet_id"])


def downgrade() -> None:
    op.drop_index("ix_port_addresses_subnet_id", "port_addresses")
    op.drop_index("ix_port_addresses_port_id", "port_addresses")
    op.drop_table("port_addresses")
    op.drop_index("ix_subnets_network_id", "subnets")
    op.drop_table("subnets")
