"""Where a checkout keeps what the system's service accounts must reach.

QEMU runs guests as ``libvirt-qemu`` and PostgreSQL's server runs as ``postgres``; neither can
enter a checkout that lives in a private directory (root's 0700 home, a ``mktemp -d`` folder).
So the tiny guest's kernel and initrd, guest serial consoles and ``make run``'s database live
in a *state directory* of this checkout under ``/var/tmp``, named after the user and a hash of
the checkout's path::

    /var/tmp/hotplug-nic-<user>-<hash>/     0711: others may pass through, not list
        checkout                            the checkout's path (stale directories are pruned)
        guest/  vmlinuz initrd.img          public Debian kernel + busybox initramfs
        consoles/                           guest serial consoles (libvirt labels each file)
        pgdata/                             make run's PostgreSQL cluster, owned by postgres, 0700

Nothing of the user's checkout is opened up.  ``HOTPLUG_STATE_DIR`` overrides the location.
``python -m devtools.paths [guest|clean]`` prints the state directory (or its guest folder),
or removes it (``make clean``).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
ROOT = Path("/var/tmp")
_PREFIX = "hotplug-nic-"
# Traversable by the service accounts, listable by nobody but the owner.
PASS_THROUGH = 0o711


def state_dir(project: Path = PROJECT) -> Path:
    override = os.environ.get("HOTPLUG_STATE_DIR")
    if override:
        return Path(override)
    digest = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:12]
    return ROOT / f"{_PREFIX}{getpass.getuser()}-{digest}"


def guest_dir(project: Path = PROJECT) -> Path:
    return state_dir(project) / "guest"


def consoles_dir(project: Path = PROJECT) -> Path:
    return state_dir(project) / "consoles"


def pgdata_dir(project: Path = PROJECT) -> Path:
    return state_dir(project) / "pgdata"


def ensure(project: Path = PROJECT) -> Path:
    """Create the state directory and its pass-through folders; prune those of deleted checkouts."""
    _prune_stale()
    root = state_dir(project)
    for folder in (root, guest_dir(project), consoles_dir(project)):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(PASS_THROUGH)
    (root / "checkout").write_text(str(project.resolve()))
    return root


def _prune_stale() -> None:
    """Remove state directories of this user whose checkout is gone (CI clones come and go)."""
    if "HOTPLUG_STATE_DIR" in os.environ:
        return
    for root in ROOT.glob(f"{_PREFIX}{getpass.getuser()}-*"):
        try:
            checkout = Path((root / "checkout").read_text().strip())
        except OSError:
            continue
        if not checkout.exists():
            remove(root)


def remove(root: Path) -> None:
    """Stop a PostgreSQL cluster still running in ``root`` and delete the folder."""
    from devtools.pg import Cluster

    if (root / "pgdata" / "PG_VERSION").exists():
        Cluster(root / "pgdata").stop()
    shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str]) -> None:
    if argv == ["clean"]:
        remove(state_dir())
    elif argv == ["guest"]:
        print(guest_dir())
    else:
        print(state_dir())


if __name__ == "__main__":
    main(sys.argv[1:])
