#!/usr/bin/env bash
# Placeholder until the QEMU tier lands: the tier's tests skip and say why.
echo "scripts/vm/setup.sh: the QEMU igb tier is not set up yet" >&2
exit 1
