"""What a guest reads to configure its VFs: OpenStack ``network_data.json`` / ``meta_data.json``
and cloud-init NoCloud ``network-config`` / ``meta-data`` / ``user-data``, rendered from plain
models (:mod:`vfkeeper.guest.models`), and config-drive images holding them
(:mod:`vfkeeper.guest.config_drive`, the only module here that writes files).

Pure: nothing here reads the store or a host; :mod:`vfkeeper.controller.metadata` builds the
models from the store and serves the documents.
"""
