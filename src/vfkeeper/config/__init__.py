"""Reading configuration files (I/O lives here, not in the domain core)."""

from vfkeeper.config.device_specs import SpecSources, load_spec_set, read_toml_sources
from vfkeeper.config.errors import ConfigError, NovaConfError, TomlConfigError, VfMapError
from vfkeeper.config.nova_conf import parse_nova_conf, read_nova_conf, read_nova_confs
from vfkeeper.config.opennebula import parse_vf_map, read_vf_maps

__all__ = [
    "ConfigError",
    "NovaConfError",
    "SpecSources",
    "TomlConfigError",
    "VfMapError",
    "load_spec_set",
    "parse_nova_conf",
    "parse_vf_map",
    "read_nova_conf",
    "read_nova_confs",
    "read_toml_sources",
    "read_vf_maps",
]
