"""The VM tier's harness, on the host and without QEMU (these tests are not marked ``vm``).

The batching itself is tested end to end with a stand-in for QEMU that runs the guest's
``run.sh`` on the host: one "boot" must serve every selected test, and each host item must end as
its test ended in the "guest".
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import vm_guest
import vm_harness
from vm_harness import Outcome, VmImage, VmOptions, VmUnavailable

HERE = Path(__file__).resolve().parent


def fake_image(tmp_path: Path, qemu: Path) -> VmImage:
    files = {name: tmp_path / name for name in ("vmlinuz", "initrd", "modules")}
    for path in files.values():
        path.touch()
    return VmImage(
        kver="6.1.0-test-amd64",
        kernel=files["vmlinuz"],
        initrd=files["initrd"],
        modules_dir=files["modules"],
        qemu=qemu,
        qemu_version="10.0.2",
    )


def write_vm_env(cache: Path, image: VmImage) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "vm.env").write_text(
        f"KVER={image.kver}\nKERNEL={image.kernel}\nINITRD={image.initrd}\n"
        f"MODULES_DIR={image.modules_dir}\nQEMU={image.qemu}\nQEMU_VERSION=10.0.2\n"
        f"INIT_SHA256={hashlib.sha256(vm_harness.INIT_SCRIPT.read_bytes()).hexdigest()}\n"
    )


FAKE_QEMU = """\
#!{python}
# Stands in for qemu-system-x86_64: answers "-device help", and "boots" by running the share's
# run.sh right here, counting boots in $FAKE_QEMU_BOOTS.
import os, subprocess, sys
args = sys.argv[1:]
if args[:2] == ["-device", "help"]:
    print('name "igb", bus PCI, desc "Intel 82576 Gigabit Ethernet Controller"')
    sys.exit(0)
share = next(a.split("path=")[1].split(",")[0] for a in args if "mount_tag=vfkshare" in a)
with open(os.environ["FAKE_QEMU_BOOTS"], "a") as f:
    f.write(" ".join(args) + "\\n")
if os.environ.get("FAKE_QEMU_HANG"):
    import time
    time.sleep(600)
env = dict(os.environ, VFK_SHARE=share)
env.pop("PYTEST_ADDOPTS", None)
print("vfk-init: fake boot")
subprocess.call(["sh", share + "/run.sh"], env=env)
"""


@pytest.fixture
def fake_qemu(tmp_path: Path) -> Path:
    script = tmp_path / "qemu-system-x86_64"
    script.write_text(FAKE_QEMU.format(python=sys.executable))
    script.chmod(0o755)
    return script


# --- options and command line ---------------------------------------------------------------------
def test_options_from_markers_merge_to_one_boot_that_serves_all() -> None:
    plain = VmOptions.from_kwargs({})
    vfio = VmOptions.from_kwargs({"iommu": True, "memory_mb": 2048, "load": "rdma_rxe"})
    merged = plain.merge(vfio).merge(VmOptions.from_kwargs({"load": ["ib_umad", "rdma_rxe"]}))
    assert merged == VmOptions(memory_mb=2048, iommu=True, load=("rdma_rxe", "ib_umad"))


def test_unknown_marker_option_is_an_error_naming_the_known_ones() -> None:
    with pytest.raises(TypeError, match=r"\['memory'\].*known: \['iommu', 'load'"):
        VmOptions.from_kwargs({"memory": 2048})


def test_qemu_command_line_is_the_testbed_one(tmp_path: Path) -> None:
    image = fake_image(tmp_path, tmp_path / "qemu")
    argv = vm_harness.qemu_argv(image, VmOptions(), tmp_path / "share")
    line = " ".join(argv)
    for part in (
        "-accel tcg -cpu max -M q35 -m 1024",
        "-nographic -no-reboot",
        "-device pcie-root-port,id=rp1,slot=1 -netdev user,id=n1,restrict=on "
        "-device igb,bus=rp1,netdev=n1",
        "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        f"local,path={tmp_path / 'share'},mount_tag=vfkshare",
    ):
        assert part in line
    assert "intel-iommu" not in line
    assert "intel_iommu=on" not in line


def test_iommu_option_puts_the_iommu_before_every_pci_device_and_loads_vfio(tmp_path: Path) -> None:
    image = fake_image(tmp_path, tmp_path / "qemu")
    argv = vm_harness.qemu_argv(image, VmOptions(iommu=True, memory_mb=3072), tmp_path)
    iommu = argv.index("intel-iommu,intremap=off")
    assert iommu < argv.index("pcie-root-port,id=rp1,slot=1")
    assert argv[argv.index("-m") + 1] == "3072"
    cmdline = argv[argv.index("-append") + 1].split()
    assert "intel_iommu=on" in cmdline
    assert "vfio_iommu_type1.allow_unsafe_interrupts=1" in cmdline
    assert "vfk.load=vfio_iommu_type1,vfio_pci" in cmdline


# --- what is missing ------------------------------------------------------------------------------
def test_missing_set_up_says_which_file_and_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(VmUnavailable) as missing:
        vm_harness.find_image(tmp_path / "cache")
    message = str(missing.value)
    assert str(tmp_path / "cache" / "vm.env") in message
    assert "./dev.sh setup" in message
    assert "QEMU >= 8" in message


def test_missing_kernel_is_named(tmp_path: Path, fake_qemu: Path) -> None:
    image = fake_image(tmp_path, fake_qemu)
    write_vm_env(tmp_path / "cache", image)
    image.kernel.unlink()
    with pytest.raises(VmUnavailable, match=r"the kernel .*vmlinuz.* is missing; run `./dev.sh"):
        vm_harness.find_image(tmp_path / "cache")


def test_an_initramfs_built_from_another_init_script_is_stale(
    tmp_path: Path, fake_qemu: Path
) -> None:
    write_vm_env(tmp_path / "cache", fake_image(tmp_path, fake_qemu))
    env = tmp_path / "cache" / "vm.env"
    env.write_text(env.read_text().replace("INIT_SHA256=", "INIT_SHA256=0"))
    with pytest.raises(VmUnavailable, match=r"built from another .*initramfs-init.* re-run"):
        vm_harness.find_image(tmp_path / "cache")


def test_qemu_without_igb_is_named_with_the_version_needed(tmp_path: Path) -> None:
    old_qemu = tmp_path / "old-qemu"
    old_qemu.write_text("#!/bin/sh\necho 'name \"e1000e\", bus PCI'\n")
    old_qemu.chmod(0o755)
    write_vm_env(tmp_path / "cache", fake_image(tmp_path, old_qemu))
    with pytest.raises(VmUnavailable, match=r"has no igb device.*QEMU >= 8.*bookworm-backports"):
        vm_harness.find_image(tmp_path / "cache")


# --- reading the guest's report -------------------------------------------------------------------
def test_outcomes_failure_wins_then_skip_then_pass() -> None:
    call_ok = {"when": "call", "outcome": "passed"}
    teardown_err = {"when": "teardown", "outcome": "failed", "longrepr": "E  boom",
                    "sections": [["Captured stdout teardown", "hello"]]}  # fmt: skip
    assert vm_harness.outcome_of([call_ok]) == Outcome("passed")
    failed = vm_harness.outcome_of([call_ok, teardown_err])
    assert failed.kind == "failed"
    assert "(teardown)" in failed.message and "E  boom" in failed.message
    assert "hello" in failed.message
    skipped = vm_harness.outcome_of([{"when": "setup", "outcome": "skipped", "reason": "no igb"}])
    assert skipped == Outcome("skipped", "in the guest: no igb")
    xfailed = {"when": "call", "outcome": "skipped", "wasxfail": "igb refuses it"}
    assert vm_harness.outcome_of([xfailed]) == Outcome("xfailed", "igb refuses it")
    assert vm_harness.outcome_of([{"when": "setup", "outcome": "passed"}]).kind == "missing"
    assert vm_harness.outcome_of([]).kind == "missing"


def test_a_record_cut_short_by_a_dying_guest_is_ignored(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    results.write_text(
        '{"nodeid": "t::a", "when": "call", "outcome": "passed"}\n{"nodeid": "t::b", "wh'
    )
    assert list(vm_harness.read_records(results)) == ["t::a"]


# --- running QEMU ---------------------------------------------------------------------------------
def test_the_guard_kills_a_hanging_qemu_and_says_so_in_the_log(
    tmp_path: Path, fake_qemu: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_QEMU_BOOTS", str(tmp_path / "boots"))
    monkeypatch.setenv("FAKE_QEMU_HANG", "1")
    run = vm_harness.run_guest(
        fake_image(tmp_path, fake_qemu), VmOptions(), "true\n", workdir=tmp_path / "run",
        timeout_s=0.5,
    )  # fmt: skip
    assert run.timed_out and run.returncode is None
    assert "killed QEMU after the" in run.console_log.read_text()
    assert "VFKEEPER_VM_TIMEOUT" in vm_harness.describe(run)
    assert (tmp_path / "run" / "qemu.argv").is_file()


# --- the whole batching, with the stand-in QEMU ---------------------------------------------------
SAMPLE_TESTS = """\
import pytest

pytestmark = pytest.mark.vm

def test_passes():
    assert 1 + 1 == 2

def test_fails():
    print("guest side output")
    assert "guest" == "host"

def test_skips():
    pytest.skip("no rdma_rxe in this kernel")

@pytest.mark.xfail(reason="igb refuses link_state")
def test_xfails():
    raise OSError(95, "Operation not supported")

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n

def test_not_selected():
    pass
"""


HOST_TESTS = """\
import os, time
from pathlib import Path

def test_the_guest_boots_while_host_tests_run():
    boots = Path(os.environ["FAKE_QEMU_BOOTS"])
    end = time.monotonic() + 120  # a deadline for a hang, not a timing assertion
    while not boots.exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert boots.exists(), "the guest did not start before the host's tests ran"

def test_host_fails():
    assert os.environ.get("HOST_FAILS") != "1"
"""


def make_project(root: Path) -> Path:
    """A copy of this tier (conftest + harness) in a throwaway project with sample vm tests, and
    host tests next to them."""
    vm_dir = root / "tests" / "vm"
    vm_dir.mkdir(parents=True)
    for name in ("conftest.py", "vm_harness.py", "vm_guest.py"):
        shutil.copy(HERE / name, vm_dir / name)
    (root / "scripts" / "vm").mkdir(parents=True)
    shutil.copy(vm_harness.INIT_SCRIPT, root / "scripts" / "vm" / "initramfs-init")
    (vm_dir / "test_sample.py").write_text(SAMPLE_TESTS)
    (root / "tests" / "test_host.py").write_text(HOST_TESTS)
    (root / "pytest.ini").write_text(
        textwrap.dedent("""\
            [pytest]
            addopts = -ra --strict-markers -p no:cacheprovider
            markers =
                vm: boots the kernel in QEMU
        """)
    )
    return root


def run_pytest(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VFKEEPER_", "PYTEST_"))}
    clean["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # faster; the tier needs no plugin
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project, env={**clean, **env}, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def set_up_tier(tmp_path: Path, fake_qemu: Path, **env: str) -> tuple[Path, dict[str, str]]:
    """A throwaway project, a set-up with the stand-in QEMU, and the environment that uses it:
    boots are counted in ``tmp_path/boots``, runs are kept under ``tmp_path/logs``."""
    project = make_project(tmp_path / "project")
    cache = tmp_path / "cache"
    write_vm_env(cache, fake_image(tmp_path, fake_qemu))
    return project, {
        "VFKEEPER_VM_CACHE": str(cache),
        "FAKE_QEMU_BOOTS": str(tmp_path / "boots"),
        "VFKEEPER_VM_LOGDIR": str(tmp_path / "logs"),
        **env,
    }


def test_one_boot_serves_every_selected_test_and_each_reports_its_guest_outcome(
    tmp_path: Path, fake_qemu: Path
) -> None:
    project, env = set_up_tier(tmp_path, fake_qemu)
    boots = tmp_path / "boots"

    result = run_pytest(project, env, "-rA", "-v", "-k", "not not_selected", "tests")

    out = result.stdout
    assert len(boots.read_text().splitlines()) == 1, out
    assert "1 failed, 5 passed, 1 skipped, 1 deselected, 1 xfailed" in out, out
    # The stand-ins run last, after the host's tests, which ran while the guest was booting.
    assert out.index("test_host.py::test_host_fails PASSED") < out.index("test_sample.py::")
    assert "failed in the guest (call)" in out
    assert "assert 'guest' == 'host'" in out
    assert "guest side output" in out
    assert "(guest console log: " + str(tmp_path / "logs") in out
    assert "SKIPPED [1] tests/vm/test_sample.py:12: in the guest: no rdma_rxe in this kernel" in out
    assert "XFAIL tests/vm/test_sample.py::test_xfails - igb refuses link_state" in out
    assert "console log " + str(tmp_path / "logs") in out
    args = next((tmp_path / "logs").glob("*/share/pytest-args.txt")).read_text().splitlines()
    assert "tests/vm/test_sample.py::test_not_selected" not in args
    assert "tests/vm/test_sample.py::test_param[2]" in args


@pytest.mark.parametrize("required", [False, True], ids=["skip", "required-fails"])
def test_without_the_set_up_every_vm_test_skips_saying_how_to_get_it(
    tmp_path: Path, required: bool
) -> None:
    project = make_project(tmp_path / "project")
    env = {"VFKEEPER_VM_CACHE": str(tmp_path / "nothing-here")}
    if required:
        env["VFKEEPER_VM_REQUIRED"] = "1"

    result = run_pytest(project, env, "-rA", "tests/vm/test_sample.py::test_passes")

    assert "is missing" in result.stdout and "./dev.sh setup" in result.stdout, result.stdout
    assert ("1 failed" if required else "1 skipped") in result.stdout, result.stdout


def test_a_session_that_ends_early_kills_the_guest_and_never_waits_for_it(
    tmp_path: Path, fake_qemu: Path
) -> None:
    project, env = set_up_tier(tmp_path, fake_qemu, FAKE_QEMU_HANG="1", HOST_FAILS="1")

    # -x: the failing host test ends the session while the "guest" hangs (for 600 s).
    result = run_pytest(project, env, "-x", "tests")

    assert "1 failed, 1 passed" in result.stdout, result.stdout
    console = next((tmp_path / "logs").glob("*/console.log")).read_text()
    assert "killed QEMU: the pytest session ended before the guest" in console


def test_collect_only_does_not_boot(tmp_path: Path, fake_qemu: Path) -> None:
    project, env = set_up_tier(tmp_path, fake_qemu)
    boots = tmp_path / "boots"

    result = run_pytest(project, env, "--collect-only", "-q", "tests")

    assert "tests/vm/test_sample.py::test_passes" in result.stdout, result.stdout
    assert not boots.exists()


# --- the nested guest of test_libvirt_hotplug.py --------------------------------------------------
def _hotplug_module() -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_hotplug", HERE / "test_libvirt_hotplug.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_nested_guest_stub_is_l2stub_s_assembled(tmp_path: Path) -> None:
    if not (shutil.which("as") and shutil.which("ld")):
        pytest.skip("binutils (as, ld) are not installed")
    subprocess.run(["as", "--32", "-o", tmp_path / "l2stub.o", HERE / "l2stub.S"], check=True)
    subprocess.run(
        ["ld", "-m", "elf_i386", "-Ttext=0x100000", "-e", "0x100000", "--oformat", "binary",
         "-o", tmp_path / "l2stub.bin", tmp_path / "l2stub.o"],
        check=True,
    )  # fmt: skip
    assert (tmp_path / "l2stub.bin").read_bytes() == _hotplug_module().L2_STUB  # type: ignore[attr-defined]


def test_the_nested_guest_stub_answers_a_pci_unplug_on_a_real_qemu(tmp_path: Path) -> None:
    """QEMU (the tier's, on the host) boots the stub on the pc machine; a device_del of a
    hot-plugged NIC completes, which needs a guest that answers the ACPI eject."""
    try:
        qemu = vm_harness.find_image().qemu
    except VmUnavailable as exc:
        if os.environ.get("VFKEEPER_VM_REQUIRED") == "1":
            pytest.fail(f"{exc} (VFKEEPER_VM_REQUIRED=1)")
        pytest.skip(str(exc))
    stub = tmp_path / "l2stub.bin"
    stub.write_bytes(_hotplug_module().L2_STUB)  # type: ignore[attr-defined]
    serial, sock = tmp_path / "serial.log", tmp_path / "qmp.sock"
    argv = [str(qemu), "-accel", "tcg", "-M", "pc", "-m", "32", "-display", "none", "-nodefaults",
            "-no-reboot", "-kernel", str(stub), "-serial", f"file:{serial}",
            "-qmp", f"unix:{sock},server=on,wait=on"]  # fmt: skip
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL) as proc:
        try:
            vm_guest.wait_until(sock.exists, "QEMU's QMP socket")
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(str(sock))
            qmp = conn.makefile("rw")

            def call(command: str, **arguments: object) -> dict[str, object]:
                qmp.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
                qmp.flush()
                while True:
                    reply: dict[str, object] = json.loads(qmp.readline())
                    if "event" not in reply:
                        return reply

            json.loads(qmp.readline())  # the greeting
            call("qmp_capabilities")
            vm_guest.wait_until(
                lambda: serial.exists() and "VFK-L2-READY" in serial.read_text(),
                "the stub's greeting",
            )
            assert "return" in call("device_add", driver="e1000", id="nic1")
            assert "return" in call("device_del", id="nic1")

            def gone() -> bool:
                listed = call("qom-list", path="/machine/peripheral")["return"]
                return not any(p["name"] == "nic1" for p in listed)  # type: ignore[attr-defined]

            vm_guest.wait_until(gone, "the unplug of nic1")
            conn.close()
        finally:
            proc.kill()
