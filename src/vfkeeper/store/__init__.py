"""Store: SQLAlchemy 2 models and Alembic migrations (SQLite by default, PostgreSQL by URL)."""

# The agent-report, subnet and guest tables live in their own modules on the same declarative
# Base; importing them here means any use of the store sees the complete schema (Alembic
# compares all of it).
from vfkeeper.store import agent_models as agent_models
from vfkeeper.store import guest_models as guest_models
from vfkeeper.store import partition_models as partition_models
from vfkeeper.store import subnet_models as subnet_models
