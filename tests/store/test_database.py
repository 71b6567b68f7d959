"""The database handle and the invariants the schema itself enforces."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from vfkeeper.store import migrate
from vfkeeper.store.database import Database
from vfkeeper.store.errors import DatabaseUrlError
from vfkeeper.store.models import Allocation, Device, Host, Instance, Network, Port


@pytest.fixture
def db(db_url: str) -> Database:
    database = Database(db_url)
    migrate.upgrade(database.engine)
    return database


def _seed(db: Database) -> tuple[int, int]:
    with db.write() as s:
        host = Host(name="h1")
        s.add(host)
        s.flush()
        dev = Device(host_id=host.id, address="0000:03:00.1", dev_type="type-VF", tags={})
        net = Network(id="n", name="n", physical_network="p", segmentation_type="flat", mtu=1500)
        s.add_all([dev, net])
        s.flush()
        s.add(Instance(id="i1", name="i1", numa_policy="legacy", status="ACTIVE"))
        s.add(Instance(id="i2", name="i2", numa_policy="legacy", status="ACTIVE"))
        for pid in ("p1", "p2"):
            s.add(Port(id=pid, network_id="n", vnic_type="direct", vif_details={},
                       binding_profile={}))
        s.flush()
        return host.id, dev.id


def test_one_device_cannot_be_allocated_twice(db: Database) -> None:
    host_id, dev_id = _seed(db)
    with db.write() as s:
        s.add(Allocation(request_id="r1", device_id=dev_id, host_id=host_id, instance_id="i1",
                         port_id="p1", desired={}))
    with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"), db.write() as s:
        s.add(Allocation(request_id="r2", device_id=dev_id, host_id=host_id, instance_id="i2",
                         port_id="p2", desired={}))


def test_a_device_in_use_cannot_be_deleted(db: Database) -> None:
    host_id, dev_id = _seed(db)
    with db.write() as s:
        s.add(Allocation(request_id="r1", device_id=dev_id, host_id=host_id, instance_id="i1",
                         port_id="p1", desired={}))
    with pytest.raises(IntegrityError), db.write() as s:
        s.execute(text("DELETE FROM devices WHERE id = :id"), {"id": dev_id})


def test_two_ports_cannot_share_a_mac(db: Database) -> None:
    _seed(db)
    with pytest.raises(IntegrityError), db.write() as s:
        for pid in ("p1", "p2"):
            s.get_one(Port, pid).mac = "02:76:66:00:00:01"


def test_a_failed_write_leaves_nothing_behind(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as s:
        s.add(Host(name="half"))
        s.flush()
        raise RuntimeError("boom")
    with db.read() as s:
        assert s.query(Host).count() == 0


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with db.read() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert s.execute(text("PRAGMA busy_timeout")).scalar() > 0


def test_sqlite_writers_take_the_write_lock_at_begin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A second writer cannot start its transaction while the first one is open (BEGIN
    IMMEDIATE), so it can never read state the first one is about to change."""
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    db = Database(url)
    migrate.upgrade(db.engine)
    order: list[str] = []
    first_inside = threading.Event()
    release = threading.Event()

    def first() -> None:
        with db.write() as s:
            s.add(Host(name="a"))
            s.flush()
            first_inside.set()
            release.wait(10)
            order.append("first-commit")

    def second() -> None:
        first_inside.wait(10)
        with db.write() as s:
            order.append("second-begin")
            s.add(Host(name="b"))

    t1, t2 = threading.Thread(target=first), threading.Thread(target=second)
    t1.start()
    t2.start()
    first_inside.wait(10)
    release.set()
    t1.join(20)
    t2.join(20)
    assert order == ["first-commit", "second-begin"]


@pytest.mark.parametrize(
    "url",
    ["mysql://x/y", "sqlite://", "sqlite:///:memory:", "postgresql+psycopg2://u@h/d", "nonsense"],
)
def test_unsupported_urls_are_refused_with_the_accepted_forms(url: str) -> None:
    with pytest.raises(DatabaseUrlError, match="sqlite:///PATH"):
        Database(url)


def test_a_snapshot_read_does_not_see_what_commits_between_its_statements(db: Database) -> None:
    """A document built from several queries (a host's desired state) must not mix two states
    of the database: a plain read on PostgreSQL (READ COMMITTED) would see the change below."""
    with db.write() as s:
        s.add(Host(name="h1", generation=1))
    with db.read(snapshot=True) as s:
        first = s.scalar(select(Host.generation).where(Host.name == "h1"))
        with db.write() as other:  # another request commits meanwhile
            other.execute(update(Host).values(generation=2))
        second = s.scalar(select(Host.generation).where(Host.name == "h1"))
    assert (first, second) == (1, 1)
    with db.read() as s:
        assert s.scalar(select(Host.generation)) == 2
