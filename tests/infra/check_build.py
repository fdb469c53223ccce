"""Check the artifacts of `sam build` before they are deployed.

Run by `make build` (infra.mk) after `sam build`; standard library only. Checks that

* the dependency layer holds Pillow built for Lambda: every ``PIL/_imaging*.so`` is a 64-bit
  little-endian ELF for aarch64 (read from the ELF header, not the file name) and tagged for the
  runtime's CPython version, and no shared object in the layer is for another machine;
* the function package holds ``app.py`` and ``image_cleanup/`` and no byte-code caches;
* layer plus function stay below Lambda's 250 MB unzipped limit;

and prints the unzipped sizes in MB.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
EM_AARCH64 = 183
E_MACHINE_OFFSET = 18
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
MEGABYTE = 1024 * 1024


class BuildCheckError(Exception):
    """A built artifact is not fit for the Lambda runtime."""


@dataclass(frozen=True)
class ElfHeader:
    """The identification fields of an ELF header that decide where a shared object can load."""

    elf_class: int
    data_encoding: int
    machine: int


def read_elf_header(path: Path) -> ElfHeader:
    """Read class, byte order and machine from the ELF header of ``path``."""
    with path.open("rb") as stream:
        header = stream.read(E_MACHINE_OFFSET + 2)
    if len(header) < E_MACHINE_OFFSET + 2 or header[:4] != ELF_MAGIC:
        raise BuildCheckError(f"{path} is not an ELF file")
    elf_class = header[4]
    data_encoding = header[5]
    byteorder: Literal["little", "big"] = "little" if data_encoding == ELFDATA2LSB else "big"
    machine = int.from_bytes(header[E_MACHINE_OFFSET : E_MACHINE_OFFSET + 2], byteorder)
    return ElfHeader(elf_class=elf_class, data_encoding=data_encoding, machine=machine)


def is_lambda_arm64(header: ElfHeader) -> bool:
    """True when the header describes a 64-bit little-endian aarch64 object (Lambda arm64)."""
    return (
        header.elf_class == ELFCLASS64
        and header.data_encoding == ELFDATA2LSB
        and header.machine == EM_AARCH64
    )


def tree_size(root: Path) -> int:
    """Total size in bytes of the regular files below ``root`` (what Lambda unzips)."""
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def python_tag(python_version: str) -> str:
    """``3.14`` -> ``314``."""
    if not re.fullmatch(r"3\.\d+", python_version):
        raise BuildCheckError(f"not a Python 3 version: {python_version!r}")
    return python_version.replace(".", "")


def check_pillow(site_packages: Path, python_version: str) -> list[Path]:
    """Check Pillow's compiled core in ``site_packages``; return the checked extension modules."""
    tag = python_tag(python_version)
    extensions = sorted((site_packages / "PIL").glob("_imaging*.so"))
    if not any(path.name.startswith("_imaging.") for path in extensions):
        raise BuildCheckError(f"no PIL/_imaging*.so in {site_packages}: Pillow is missing or not compiled")
    for path in extensions:
        if f".cpython-{tag}-" not in path.name:
            raise BuildCheckError(f"{path.name} is not built for CPython {python_version}")
        if not is_lambda_arm64(read_elf_header(path)):
            raise BuildCheckError(f"{path} is not an aarch64 ELF object")
    wheel_files = list(site_packages.glob("pillow-*.dist-info/WHEEL"))
    if len(wheel_files) != 1:
        raise BuildCheckError(f"expected one pillow-*.dist-info/WHEEL in {site_packages}")
    tags = re.findall(r"^Tag: (\S+)$", wheel_files[0].read_text(encoding="utf-8"), flags=re.MULTILINE)
    expected = re.compile(rf"cp{tag}-cp{tag}-manylinux\w*_aarch64")
    if not tags or not all(expected.fullmatch(wheel_tag) for wheel_tag in tags):
        raise BuildCheckError(f"Pillow wheel tags {tags} are not cp{tag} manylinux aarch64")
    return extensions


def check_fpng(site_packages: Path) -> Path:
    """The fast PNG writer the function imports: its extension, built for Lambda arm64 (abi3 wheels
    load on the runtime's CPython)."""
    extensions = sorted((site_packages / "fpng").glob("fpng_ext*.so"))
    if not extensions:
        raise BuildCheckError(f"no fpng/fpng_ext*.so in {site_packages}: fpng is missing")
    for path in extensions:
        if not is_lambda_arm64(read_elf_header(path)):
            raise BuildCheckError(f"{path} is not an aarch64 ELF object")
    return extensions[0]


def check_shared_objects(root: Path) -> int:
    """Check that every shared object below ``root`` is for Lambda arm64; return how many there are."""
    shared_objects = [path for path in root.rglob("*.so*") if path.is_file() and ".so" in path.suffixes]
    for path in shared_objects:
        if not is_lambda_arm64(read_elf_header(path)):
            raise BuildCheckError(f"{path} is not an aarch64 ELF object")
    return len(shared_objects)


def check_function(function_dir: Path) -> None:
    """Check the function package: handler module and package present, no byte-code caches."""
    if not (function_dir / "app.py").is_file():
        raise BuildCheckError(f"{function_dir}/app.py is missing")
    if not (function_dir / "image_cleanup").is_dir():
        raise BuildCheckError(f"{function_dir}/image_cleanup/ is missing")
    caches = [path for path in function_dir.rglob("*") if path.name == "__pycache__" or path.suffix == ".pyc"]
    if caches:
        raise BuildCheckError(f"byte-code caches in the function package: {caches[:3]}")


def megabytes(size: int) -> str:
    """Format a byte count in MB with one decimal."""
    return f"{size / MEGABYTE:.1f} MB"


def run(build_dir: Path, python_version: str) -> None:
    """Run every check on the ``sam build`` output in ``build_dir`` and print a summary."""
    layer_dir = build_dir / "DependencyLayer"
    function_dir = build_dir / "CleanupFunction"
    site_packages = layer_dir / "python"
    if not site_packages.is_dir():
        raise BuildCheckError(f"{site_packages} is missing: run sam build first")
    extensions = check_pillow(site_packages, python_version)
    fpng_extension = check_fpng(site_packages)
    shared_object_count = check_shared_objects(layer_dir)
    check_function(function_dir)
    layer_size = tree_size(layer_dir)
    function_size = tree_size(function_dir)
    if layer_size + function_size > LAMBDA_UNZIPPED_LIMIT_BYTES:
        total = megabytes(layer_size + function_size)
        raise BuildCheckError(f"layer + function = {total} exceeds Lambda's 250 MB unzipped limit")
    print(f"Pillow: {len(extensions)} extension modules, aarch64 ELF, CPython {python_version}")
    print(f"fpng: {fpng_extension.name}, aarch64 ELF")
    print(f"Layer shared objects: {shared_object_count}, all aarch64")
    print(f"DependencyLayer unzipped size: {megabytes(layer_size)}")
    print(f"CleanupFunction unzipped size: {megabytes(function_size)}")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"))
    parser.add_argument("--python-version", required=True, help="runtime's Python version, e.g. 3.14")
    arguments = parser.parse_args(argv)
    try:
        run(arguments.build_dir, arguments.python_version)
    except BuildCheckError as error:
        print(f"build check failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
