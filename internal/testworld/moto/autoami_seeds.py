"""Seeds of the local AWS: what every stock region has, and real bytes.

An extension of autoami_moto (see its docstring). It adds:
  - the official Debian 12 images (amd64 and arm64, Debian's owner ID and
    naming, public) in every region, which unpackers boot from by default;
  - snapshots imported from a local raw disk file (POST
    /autoami-harness/import-snapshot), how tests and the demo give vendor
    images a real bootable root disk;
  - the boot disk (--boot-disk, from internal/testworld/bootdisk) as the root
    snapshot's bytes of the Debian images, so an instance launched from them
    has a disk that boots.
"""

import datetime
import os
import shutil
import threading

import autoami_moto as core
from moto.ec2.models import ec2_backends

# Debian's AWS account, which owns the official Debian AMIs.
DEBIAN_OWNER = "136693071363"
# One Debian 12 release (build date and serial), as in debian-12-amd64-20261110-1924.
DEBIAN_RELEASE = "20261110-1924"
DEBIAN_RELEASED_AT = datetime.datetime(2026, 11, 10, 19, 24, 0)
# Debian's root volumes are 8 GiB; the snapshot holds the boot disk (1 GiB).
DEBIAN_VOLUME_SIZE = 8

_LOCK = threading.Lock()
# Regions whose Debian images exist since the last reset.
_SEEDED = set()

core.ADDITIONS.append(
    "Official Debian 12 images (amd64, arm64; owner 136693071363, public, "
    "uefi-preferred, ENA) in every region, the boot disk as their root snapshot"
)
core.ADDITIONS.append("Snapshots imported from a local raw disk file (POST /autoami-harness/import-snapshot)")


def _reset():
    with _LOCK:
        _SEEDED.clear()


core.RESET_HOOKS.append(_reset)


def _copy_bytes(src, dst):
    """dst becomes a copy of src, holes kept: a hard link when src is shared
    read-only (the boot disk is never written by anyone), else a sparse copy."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".importing"
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        os.link(src, tmp)
    except OSError:
        import subprocess

        subprocess.run(["cp", "--sparse=always", "--reflink=auto", src, tmp], check=True)
    os.replace(tmp, dst)


def import_snapshot(backend, path, description, size_gib=None, encrypted=False):
    """A completed snapshot in backend's account and region holding the bytes
    of the raw disk file at path (its size rounded up to whole GiB)."""
    # GAP: moto's ImportSnapshot takes no bytes (and reads no S3 disk image).
    # AWS: ImportSnapshot turns a disk image into a completed EBS snapshot.
    st = os.stat(path)
    need = -(-st.st_size // (1 << 30))
    size = max(int(size_gib or need), need)
    zone = backend.region_name + "a"
    volume = backend.create_volume(size=size, zone_name=zone, encrypted=encrypted)
    snap = backend.create_snapshot(volume.id, description)
    snap.__dict__.pop("_autoami_ready_at", None)  # imported: completed at once
    backend.delete_volume(volume.id)
    _copy_bytes(path, core.data_path(backend.account_id, backend.region_name, "snapshots", snap.id + ".img"))
    return snap


def _import_snapshot_route(environ):
    body = core.HarnessApp._json_body(environ)
    unknown = set(body) - {"region", "account", "path", "description", "sizeGiB", "encrypted"}
    if unknown:
        raise ValueError(f"import-snapshot: unknown fields {sorted(unknown)}")
    for field in ("region", "account", "path"):
        if not body.get(field):
            raise ValueError(f"import-snapshot: {field} is required")
    if not os.path.isfile(body["path"]):
        raise ValueError(f"import-snapshot: path {body['path']!r} is not a file")
    backend = ec2_backends[body["account"]][body["region"]]
    snap = import_snapshot(backend, body["path"], body.get("description") or "imported", body.get("sizeGiB"),
                           bool(body.get("encrypted")))
    return "200 OK", {"snapshotId": snap.id, "volumeSize": snap.volume_size}


core.CONTROL_ROUTES[("POST", "/autoami-harness/import-snapshot")] = _import_snapshot_route


def _data_dir_route(environ):
    return "200 OK", {"dataDir": core.DATA_DIR, "bootDisk": core.BOOT_DISK}


# Where the world keeps its bytes, for tools outside the test process
# (`localaws boot` reads snapshot files from it).
core.CONTROL_ROUTES[("GET", "/autoami-harness/data-dir")] = _data_dir_route


def _seed_debian(region):
    """Debian's images in region, once per reset."""
    # GAP: moto has no Debian images (its built-ins are Amazon, Canonical,
    # Microsoft and a few others), and built-in images hold no bytes.
    # AWS: Debian publishes debian-12-{amd64,arm64}-DATE-SERIAL in every
    # region from account 136693071363, public.
    with _LOCK:
        if region in _SEEDED:
            return
        _SEEDED.add(region)
        backend = ec2_backends[DEBIAN_OWNER][region]
        disk = core.BOOT_DISK
        for arch, name_arch in (("x86_64", "amd64"), ("arm64", "arm64")):
            name = f"debian-12-{name_arch}-{DEBIAN_RELEASE}"
            if any(a.name == name for a in backend.amis.values()):
                continue
            if disk:
                snap = import_snapshot(backend, disk, f"Debian 12 ({DEBIAN_RELEASE}) root")
            else:
                # Without a boot disk the snapshot is an empty 8 GiB disk.
                volume = backend.create_volume(size=DEBIAN_VOLUME_SIZE, zone_name=region + "a")
                snap = backend.create_snapshot(volume.id, f"Debian 12 ({DEBIAN_RELEASE}) root")
                snap.__dict__.pop("_autoami_ready_at", None)
                backend.delete_volume(volume.id)
            ami = core._register_image(backend, {
                "Name": name,
                "Description": f"Debian 12 (bookworm) {name_arch} {DEBIAN_RELEASE}",
                "Architecture": arch,
                "VirtualizationType": "hvm",
                "RootDeviceName": "/dev/xvda",
                "EnaSupport": True,
                "BootMode": "uefi-preferred" if arch == "x86_64" else "uefi",
                "ImdsSupport": "v2.0",
                "BlockDeviceMappings": [{
                    "DeviceName": "/dev/xvda",
                    "Ebs": {"SnapshotId": snap.id, "VolumeSize": DEBIAN_VOLUME_SIZE, "VolumeType": "gp3",
                            "DeleteOnTermination": True},
                }],
            })
            ami.__dict__.pop("_autoami_ready_at", None)  # long released: available
            ami.creation_date = DEBIAN_RELEASED_AT
            ami.launch_permissions.append({"Group": "all"})
            # The world starts with them: not in the inventory (autoami_fidelity).
            ami.__dict__["_autoami_default"] = snap.__dict__["_autoami_default"] = True


_orig_visible_images = core._visible_images


def _visible_images(backend):
    _seed_debian(backend.region_name)
    return _orig_visible_images(backend)


core._visible_images = _visible_images


# Seed a region's Debian images before the first EC2 call there is handled,
# not inside whichever call first lists images: that call would otherwise
# pay for it and make timings (pending windows) depend on call order.
from moto.ec2.responses import EC2Response  # noqa: E402

_orig_call_action = EC2Response.call_action


def _call_action(self):
    region = getattr(self, "region", None)
    if region and region not in _SEEDED:
        _seed_debian(region)
    return _orig_call_action(self)


EC2Response.call_action = _call_action
