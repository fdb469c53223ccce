"""The post-build check (tests/infra/check_build.py) on synthetic build trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.check_build import EM_AARCH64, BuildCheckError, main, read_elf_header, run

EM_X86_64 = 62
PILLOW_WHEEL = (
    "Wheel-Version: 1.0\nTag: cp314-cp314-manylinux_2_27_aarch64\nTag: cp314-cp314-manylinux_2_28_aarch64\n"
)


def elf_bytes(machine: int, elf_class: int = 2) -> bytes:
    """A minimal little-endian ELF header for ``machine``."""
    identification = b"\x7fELF" + bytes([elf_class, 1, 1]) + bytes(9)
    return identification + (3).to_bytes(2, "little") + machine.to_bytes(2, "little") + bytes(44)


def make_build(root: Path, machine: int = EM_AARCH64, python_tag: str = "314") -> Path:
    """A sam-build-shaped tree with a Pillow core for ``machine`` and a function package."""
    site_packages = root / "DependencyLayer" / "python"
    (site_packages / "PIL").mkdir(parents=True)
    (site_packages / "PIL" / f"_imaging.cpython-{python_tag}-aarch64-linux-gnu.so").write_bytes(
        elf_bytes(machine)
    )
    (site_packages / "pillow-13.0.0.dist-info").mkdir()
    (site_packages / "pillow-13.0.0.dist-info" / "WHEEL").write_text(PILLOW_WHEEL, encoding="utf-8")
    (site_packages / "fpng").mkdir()
    (site_packages / "fpng" / "fpng_ext.abi3.so").write_bytes(elf_bytes(machine))
    (root / "CleanupFunction" / "image_cleanup").mkdir(parents=True)
    (root / "CleanupFunction" / "app.py").write_text("", encoding="utf-8")
    return root


def test_elf_machine_is_read_from_the_header(tmp_path: Path) -> None:
    """Given a shared object whose header says aarch64,
    when its ELF header is read,
    then the machine is aarch64 (183) regardless of the file name."""
    path = tmp_path / "_imaging.cpython-314-x86_64-linux-gnu.so"
    path.write_bytes(elf_bytes(EM_AARCH64))

    header = read_elf_header(path)

    assert header.machine == EM_AARCH64
    assert header.elf_class == 2


def test_build_for_lambda_arm64_passes_and_reports_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a build whose Pillow core is an aarch64 ELF for CPython 3.14,
    when the check runs,
    then it passes and prints the layer's unzipped size in MB."""
    build = make_build(tmp_path)

    exit_code = main(["--build-dir", str(build), "--python-version", "3.14"])

    assert exit_code == 0
    assert "DependencyLayer unzipped size:" in capsys.readouterr().out


def test_pillow_built_for_x86_64_is_rejected(tmp_path: Path) -> None:
    """Given a Pillow core named for aarch64 but compiled for x86-64,
    when the check runs,
    then it fails on the ELF machine, not trusting the name."""
    build = make_build(tmp_path, machine=EM_X86_64)

    with pytest.raises(BuildCheckError, match="not an aarch64 ELF"):
        run(build, "3.14")


def test_pillow_for_another_python_version_is_rejected(tmp_path: Path) -> None:
    """Given a Pillow core built for CPython 3.12,
    when the check runs for the 3.14 runtime,
    then it fails."""
    build = make_build(tmp_path, python_tag="312")

    with pytest.raises(BuildCheckError, match=r"CPython 3\.14"):
        run(build, "3.14")


def test_missing_pillow_is_rejected(tmp_path: Path) -> None:
    """Given a layer without Pillow,
    when the check runs,
    then it fails."""
    build = make_build(tmp_path)
    for path in (build / "DependencyLayer" / "python" / "PIL").iterdir():
        path.unlink()

    with pytest.raises(BuildCheckError, match="Pillow is missing"):
        run(build, "3.14")


def test_missing_fpng_is_rejected(tmp_path: Path) -> None:
    """Given a layer without the fast PNG writer the function imports,
    when the check runs,
    then it fails naming fpng."""
    build = make_build(tmp_path)
    (build / "DependencyLayer" / "python" / "fpng" / "fpng_ext.abi3.so").unlink()

    with pytest.raises(BuildCheckError, match="fpng is missing"):
        run(build, "3.14")


def test_byte_code_caches_in_the_function_package_are_rejected(tmp_path: Path) -> None:
    """Given a function package that contains __pycache__,
    when the check runs,
    then it fails."""
    build = make_build(tmp_path)
    (build / "CleanupFunction" / "image_cleanup" / "__pycache__").mkdir()

    with pytest.raises(BuildCheckError, match="byte-code caches"):
        run(build, "3.14")
