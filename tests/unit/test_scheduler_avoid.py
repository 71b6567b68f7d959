"""``schedule(..., avoid=...)``: concurrent boots of one controller land on different hosts
(the hosts it is claiming on are passed over while another host fits), and nothing else changes:
an avoided host still wins when it is the only fit, and a request nothing fits is explained as
before."""

from __future__ import annotations

from test_scheduler_helpers import host, instance, vf, vfs

from vfkeeper.scheduler import ClusterView, NoValidHost, Placement, schedule

A0 = "0000:3b:00.0"


def _host_of(result: Placement | NoValidHost) -> str:
    assert isinstance(result, Placement), result
    return result.host


def test_avoided_hosts_are_passed_over_in_the_weighers_order() -> None:
    hosts = ClusterView([host("a", vf("p", A0, 0, 2)), host("b", vf("p", A0, 0, 4)),
                         host("c", vf("p", A0, 0, 6)), host("d", vf("p", A0, 0, 8))])
    assert _host_of(schedule(instance(*vfs("p")), hosts)) == "a"
    assert _host_of(schedule(instance(*vfs("p")), hosts, avoid={"a"})) == "b"
    assert _host_of(schedule(instance(*vfs("p")), hosts, avoid={"a", "b"})) == "c"
    spread = instance(*vfs("p"), weigher="spread")
    assert _host_of(schedule(spread, hosts, avoid={"d"})) == "c"


def test_an_avoided_host_still_wins_when_no_other_host_fits() -> None:
    hosts = [host("a", vf("p", A0, 0, 3)), host("b", vf("p", A0, 0, 1)),
             host("c", vf("p", A0, 0, 2))]
    assert _host_of(schedule(instance(*vfs("p", 3)), hosts, avoid={"a"})) == "a"
    # every fitting host avoided: the weigher's first choice among them
    assert _host_of(schedule(instance(*vfs("p", 2)), hosts, avoid={"a", "c"})) == "c"


def test_avoiding_hosts_that_do_not_fit_changes_nothing() -> None:
    hosts = [host("a", vf("p", A0, 0, 1)), host("b", vf("p", A0, 0, 3)),
             host("c", vf("p", A0, 0, 4))]
    assert _host_of(schedule(instance(*vfs("p", 2)), hosts, avoid={"a", "zz"})) == "b"


def test_avoid_is_not_exclude_a_request_nothing_fits_is_explained_as_before() -> None:
    hosts = [host("a", vf("p", A0, 0, 1)), host("b", vf("p", A0, 0, 1))]
    plain = schedule(instance(*vfs("p", 2)), hosts)
    avoided = schedule(instance(*vfs("p", 2)), hosts, avoid={"a", "b"})
    assert isinstance(plain, NoValidHost) and isinstance(avoided, NoValidHost)
    assert avoided.rejections == plain.rejections


def test_requests_without_devices_also_pass_over_avoided_hosts() -> None:
    hosts = [host("a", vf("p", A0, 0, 2)), host("b", vf("p", A0, 0, 4))]
    assert _host_of(schedule(instance(), hosts)) == "a"
    assert _host_of(schedule(instance(), hosts, avoid={"a"})) == "b"
