"""Where a VM's files are: images by name inside the images directory, consoles in the log directory.

The agent never takes a file system path from the wire.  An image name resolves to a regular
file inside the configured images directory, symbolic links followed and the result checked to
be still inside it, and libvirt is given that resolved file.  So a caller can neither reach a
file elsewhere (libvirt would hand it to ``libvirt-qemu`` while the VM runs) nor learn whether
one exists.  A VM's serial console is the agent's own file, named by the VM's id.
"""

from __future__ import annotations

from pathlib import Path

from shared_schema.errors import ParamError
from shared_schema.vm import parse_image_name


def resolve(images_dir: Path, name: str, param: str) -> str:
    """The file of image ``name`` ('' for none), or ParamError (-32602) saying why not."""
    if not parse_image_name(name, param):
        return ""
    root = images_dir.resolve()
    try:
        found = (root / name).resolve(strict=True)
    except (FileNotFoundError, RuntimeError):  # RuntimeError: a symlink loop
        raise ParamError.invalid(param, f"no image named {name!r} in the images directory") from None
    if not found.is_relative_to(root) or not found.is_file():
        raise ParamError.invalid(param, f"image {name!r} leads out of the images directory") from None
    return str(found)


def console_log(log_dir: Path, vm_id: str) -> Path:
    """The serial console of VM ``vm_id`` (an UUID, already validated)."""
    return log_dir / f"{vm_id}.console.log"
