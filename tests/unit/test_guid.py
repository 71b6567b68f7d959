import pytest
from hypothesis import given
from hypothesis import strategies as st

from vfkeeper.domain.errors import InvalidGuidError, InvalidMacError, InvalidValueError
from vfkeeper.domain.guid import (
    GUID_CLEAR,
    GUID_ZERO,
    Guid,
    format_guid,
    ipoib_client_id,
    mac_to_guid_mlx5,
    parse_guid,
    parse_mac,
)

EXPECTED = 0x0002C90300A1B2C3


@pytest.mark.parametrize(
    "text",
    [
        "0x0002c90300a1b2c3",  # ibstat / OpenSM / partitions.conf
        "0x0002C90300A1B2C3",
        "0x2c90300a1b2c3",  # 0x is a number: leading zeros may be dropped
        "0002c90300a1b2c3",  # flint
        "0002:c903:00a1:b2c3",  # sysfs
        "00:02:c9:03:00:a1:b2:c3",  # ip link
        "00:02:C9:03:00:A1:B2:C3",
        "  0002:c903:00a1:b2c3\n",  # read from a file
    ],
)
def test_every_pasted_form_parses_to_the_same_guid(text: str) -> None:
    assert parse_guid(text).value == EXPECTED


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x",
        "0x00000002c90300a1b2c3",  # 20 digits: more than 64 bits
        "2c90300a1b2c3",  # no 0x and not 16 digits: ambiguous, refused
        "12345",
        "0002:c903:00a1",  # three groups
        "00:02:c9:03:00:a1:b2",  # seven bytes
        "00:02:c9:03:00:a1:b2:c3:d4",
        "0002-c903-00a1-b2c3",
        "00:02:c9:03:00:a1:b2:cg",
        "fe80:0000:0000:0000:0002:c903:00a1:b2c3",  # a GID, not a GUID
    ],
)
def test_malformed_guids_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidGuidError) as exc:
        parse_guid(text)
    assert exc.value.value == text
    assert "0002:c903:00a1:b2c3" in str(exc.value)  # the message shows what to type instead
    assert isinstance(exc.value, ValueError)


def test_formats() -> None:
    g = Guid(EXPECTED)
    assert str(g) == g.canonical == "0x0002c90300a1b2c3"
    assert g.colon_bytes == "00:02:c9:03:00:a1:b2:c3"
    assert g.sysfs == "0002:c903:00a1:b2c3"
    assert g.packed == bytes.fromhex("0002c90300a1b2c3")
    assert format_guid("00:02:c9:03:00:a1:b2:c3") == "0x0002c90300a1b2c3"
    assert format_guid(1) == "0x0000000000000001"


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_every_form_round_trips(value: int) -> None:
    g = Guid(value)
    for text in (g.canonical, g.colon_bytes, g.sysfs, g.canonical[2:]):
        assert parse_guid(text) == g


@pytest.mark.parametrize("value", [-1, 2**64, True, "1", 1.0])
def test_guid_value_must_be_a_64_bit_integer(value: object) -> None:
    with pytest.raises(InvalidGuidError):
        Guid(value)  # type: ignore[arg-type]


def test_zero_and_clear_are_refused_only_when_asked() -> None:
    assert GUID_CLEAR.canonical == "0xffffffffffffffff"
    assert GUID_CLEAR.is_clear and GUID_ZERO.is_zero
    assert parse_guid("ff:ff:ff:ff:ff:ff:ff:ff") == GUID_CLEAR
    assert parse_guid("0x0") == GUID_ZERO
    with pytest.raises(InvalidGuidError, match="clear"):
        parse_guid("ff:ff:ff:ff:ff:ff:ff:ff", allow_clear=False)
    with pytest.raises(InvalidGuidError, match="not set"):
        parse_guid("0000:0000:0000:0000", allow_zero=False)
    assert parse_guid(GUID_CLEAR, allow_zero=False) is GUID_CLEAR


def test_mlx5_mac_to_guid_inserts_two_zero_bytes_after_the_oui() -> None:
    assert mac_to_guid_mlx5("aa:bb:cc:dd:ee:ff").colon_bytes == "aa:bb:cc:00:00:dd:ee:ff"
    assert mac_to_guid_mlx5("FA-16-3E-01-02-03") == Guid(0xFA163E0000010203)


@pytest.mark.parametrize("mac", ["fa:16:3e:01:02", "fa:16:3e:01:02:03:04", "fa:16-3e:01:02:03", ""])
def test_bad_macs_are_refused(mac: str) -> None:
    with pytest.raises(InvalidMacError):
        mac_to_guid_mlx5(mac)


def test_parse_mac_normalises() -> None:
    assert parse_mac(" FA-16-3E-0A-0B-0C ") == "fa:16:3e:0a:0b:0c"


def test_ipoib_client_id_matches_the_flexboot_dhcpd_example() -> None:
    # The dhcpd.conf host entry Mellanox documents for port GUID 00:02:c9:03:00:0c:78:11.
    assert ipoib_client_id("0x0002c903000c7811") == (
        "ff:00:00:00:00:00:02:00:00:02:c9:00:00:02:c9:03:00:0c:78:11"
    )
    assert len(ipoib_client_id(Guid(5)).split(":")) == 20


@pytest.mark.parametrize("guid", ["0x0", "0xffffffffffffffff"])
def test_ipoib_client_id_needs_a_real_port_guid(guid: str) -> None:
    with pytest.raises(InvalidValueError):
        ipoib_client_id(guid)
