"""The API's field types: every name, id and number a request carries, with the rules of the
column it ends up in (:mod:`vfkeeper.domain.text`), so that a bad value is a 422 naming its
field and never reaches the database.

The lengths come from the store's columns themselves (``VARCHAR(n)``). The same types serve
request bodies, path parameters (``/v1/ports/{port_id}``) and query parameters: ``/v1/ports/%00``
is a 422 naming ``port_id``, a well-formed id nobody has is a 404.

Free-form JSON (an inventory, device-spec entries) is checked with :func:`require_storable`,
whose error names the path of the bad value (``entries[0].physical_network``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator
from sqlalchemy import String
from sqlalchemy.orm import QueryableAttribute

from vfkeeper.controller.errors import InvalidInputError
from vfkeeper.domain.guid import parse_assignable_mac, parse_guid
from vfkeeper.domain.text import (
    NonNegativeInt32,
    Problem,
    TextRules,
    json_problems,
    printable,
)
from vfkeeper.store.models import Device, Host, Instance, Network, Port


def column_length(column: QueryableAttribute[Any]) -> int:
    """The ``n`` of a ``VARCHAR(n)`` column."""
    kind = column.type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{column} is not a String(n) column")
    return kind.length


def text_of(column: QueryableAttribute[Any], *, prose: bool = False) -> TextRules:
    """The rules of a string stored in ``column``."""
    return TextRules(column_length(column), prose=prose)


def _assignable_guid(text: str) -> str:
    return parse_guid(text, allow_zero=False, allow_clear=False).canonical


HostName = Annotated[str, text_of(Host.name)]
HostReason = Annotated[str, text_of(Host.disabled_reason, prose=True)]
DeviceAddress = Annotated[str, text_of(Device.address)]
NetworkName = Annotated[str, text_of(Network.name)]
NetworkKey = Annotated[str, text_of(Network.name)]
"""A network's id or its name."""
Physnet = Annotated[str, text_of(Network.physical_network)]
PortId = Annotated[str, text_of(Port.id)]
PortName = Annotated[str, text_of(Port.name)]
InstanceId = Annotated[str, text_of(Instance.id)]
InstanceName = Annotated[str, text_of(Instance.name)]
Kbps = NonNegativeInt32
"""A rate in kbit/s, as Neutron's QoS rules give it (stored in a 32-bit column)."""
Mac = Annotated[str, AfterValidator(parse_assignable_mac)]
"""An Ethernet MAC a port may have: unicast and not all-zero."""
AssignableGuid = Annotated[str, AfterValidator(_assignable_guid)]
"""An InfiniBand GUID a port may have: neither 0 ("not set") nor all-ones ("clear")."""


def invalid(problems: Sequence[Problem], what_to_do: str) -> InvalidInputError:
    """The 422 for a document's problems: ``field`` names the first one's path, ``details``
    lists them all (``loc``, ``field``, ``message``), the message shows up to five."""
    errors = [{"loc": [printable(x) if isinstance(x, str) else x for x in p.loc],
               "field": p.where, "message": p.message} for p in problems]
    shown = "; ".join(f"{p.where}: {p.message}" for p in problems[1:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    rest = f"; {shown}{more}" if shown else ""
    return InvalidInputError(problems[0].where, f"{problems[0].message}{rest}; {what_to_do}",
                             {"errors": errors})


def require_storable(document: Any, *root: str | int) -> None:
    """Refuse (422) a JSON document with a value no database stores (NUL, lone surrogate,
    integer beyond 64 bits, NaN) or nested too deeply, naming its path (under ``root``)."""
    problems = json_problems(document, root)
    if problems:
        raise invalid(problems, "fix those values and send it again")
