"""A drive's image resolves inside the images directory like a kernel does, and a qcow2 image
that would make QEMU open another file (a backing file, an external data file) is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_schema.config import ConfigError
from shared_schema.errors import ParamError
from shared_schema.vm import DriveSpec
from vdsm_agent.images import resolve_disk
from vdsm_agent.settings import AgentSettings


def qcow2_header(version: int = 3, backing_offset: int = 0, incompatible: int = 0) -> bytes:
    """The first 80 bytes of a qcow2 image (the fields the agent reads, big-endian)."""
    header = b"QFI\xfb" + version.to_bytes(4, "big") + backing_offset.to_bytes(8, "big")
    header += (0).to_bytes(4, "big") + (16).to_bytes(4, "big")  # backing name size, cluster bits
    return header.ljust(72, b"\0") + incompatible.to_bytes(8, "big")


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "plain.qcow2").write_bytes(qcow2_header() + b"\0" * 100)
    (folder / "v2.qcow2").write_bytes(qcow2_header(version=2)[:72])
    (folder / "overlay.qcow2").write_bytes(qcow2_header(backing_offset=0x1000))
    (folder / "external.qcow2").write_bytes(qcow2_header(incompatible=1 << 2))
    (folder / "disk.img").write_bytes(b"\0" * 512)
    (tmp_path / "secret.img").write_bytes(b"\0" * 512)
    (folder / "link.img").symlink_to(tmp_path / "secret.img")
    return folder


def test_self_contained_images_resolve_to_their_files(images: Path) -> None:
    assert resolve_disk(images, DriveSpec("disk.img", "raw"), "drives[0].image") == str(images / "disk.img")
    assert resolve_disk(images, DriveSpec("plain.qcow2", "cow"), "drives[0].image") == str(images / "plain.qcow2")
    assert resolve_disk(images, DriveSpec("v2.qcow2", "cow"), "drives[0].image") == str(images / "v2.qcow2")
    # raw is opened as raw: a qcow2 header in it is the guest's data, its backing file never followed
    assert resolve_disk(images, DriveSpec("overlay.qcow2", "raw"), "d") == str(images / "overlay.qcow2")


@pytest.mark.parametrize(
    ("image", "fmt", "words"),
    [
        ("overlay.qcow2", "cow", "image 'overlay.qcow2' has a backing file"),
        ("external.qcow2", "cow", "image 'external.qcow2' keeps its data in another file"),
        ("disk.img", "cow", "image 'disk.img' is not a qcow2 image"),
        ("link.img", "raw", "image 'link.img' leads out of the images directory"),
        ("nothing.img", "raw", "no image named 'nothing.img'"),
    ],
)
def test_refused(images: Path, image: str, fmt: str, words: str) -> None:
    with pytest.raises(ParamError) as refused:
        resolve_disk(images, DriveSpec(image, fmt), "drives[0].image")
    assert refused.value.error.code == -32602
    assert refused.value.detail.startswith(f"drives[0].image: {words}")


def test_pcie_hotplug_ports_setting_is_bounded() -> None:
    assert AgentSettings().pcie_hotplug_ports == 16  # as oVirt
    assert AgentSettings(pcie_hotplug_ports=0).pcie_hotplug_ports == 0
    with pytest.raises(ConfigError, match="pcie_hotplug_ports must be 0-200"):
        AgentSettings(pcie_hotplug_ports=-1)
