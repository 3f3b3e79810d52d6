"""Where a VM's files are: images by name inside the images directory, consoles in the log directory.

The agent never takes a file system path from the wire.  An image name resolves to a regular
file inside the configured images directory, symbolic links followed and the result checked to
be still inside it, and libvirt is given that resolved file.  So a caller can neither reach a
file elsewhere (libvirt would hand it to ``libvirt-qemu`` while the VM runs) nor learn whether
one exists.  A VM's serial console is the agent's own file, named by the VM's id.

A disk image in qcow2 (VDSM's ``cow``) may name other files in its header: a backing file, an
external data file.  QEMU would open those, and libvirt hand them to ``libvirt-qemu``; so such an
image is refused, and only self-contained qcow2 images are used.  A ``raw`` image is opened as
raw whatever it holds (a qcow2 header inside is the guest's data, never followed).
"""

from __future__ import annotations

from pathlib import Path

from shared_schema.errors import ParamError
from shared_schema.vm import DriveSpec, parse_image_name

QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_EXTERNAL_DATA_FILE = 1 << 2  # an incompatible feature bit (qcow2 version 3)


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


def resolve_disk(images_dir: Path, drive: DriveSpec, param: str) -> str:
    """The file of a drive's image, checked to be what its format says and to name no other file."""
    found = resolve(images_dir, drive.image, param)
    if drive.format == "cow":
        try:
            with open(found, "rb") as image:
                header = image.read(80)
        except OSError as exc:
            raise ParamError.invalid(param, f"image {drive.image!r} cannot be read: {exc.strerror}") from None
        if len(header) < 72 or header[:4] != QCOW2_MAGIC:
            raise ParamError.invalid(param, f"image {drive.image!r} is not a qcow2 image (format 'cow')")
        version = int.from_bytes(header[4:8], "big")
        if int.from_bytes(header[8:16], "big"):  # the backing file name's offset
            raise ParamError.invalid(param, f"image {drive.image!r} has a backing file: only self-contained images")
        if version >= 3 and len(header) == 80 and int.from_bytes(header[72:80], "big") & _QCOW2_EXTERNAL_DATA_FILE:
            raise ParamError.invalid(param, f"image {drive.image!r} keeps its data in another file")
    return found
