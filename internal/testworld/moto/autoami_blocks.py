"""Volumes and snapshots that hold bytes, and the EBS direct APIs on them.

An extension of autoami_moto (see its docstring): imported by it after its own
patches, it wraps moto's EBS and instance models so that every volume and
snapshot is a sparse file, and owns the EBS direct APIs (moved here from the
core, so that they read and write those same files). Every addition names the
moto gap it fills ("GAP:") and the AWS behaviour it follows ("AWS:"), and adds
one line to ADDITIONS.

The world's bytes (core.data_path):
  DATA_DIR/<account>/<region>/volumes/<vol-id>.img     the volume: a sparse
      file of its size, made at CreateVolume (a copy of the snapshot it names)
  DATA_DIR/<account>/<region>/snapshots/<snap-id>.img  the snapshot's bytes,
      copied from the volume at CreateSnapshot (point in time), from the
      source at CopySnapshot/CopyImage, written by EBS direct PutSnapshotBlock
  DATA_DIR/<account>/<region>/instances/<instance-id>/devices/<vol-id>.img
      a hard link of each attached volume's file (the unpacker's
      --local-devices), made at AttachVolume, removed at DetachVolume

Copies are sparse: holes stay holes, data extents are found with
SEEK_DATA/SEEK_HOLE and copied with copy_file_range (a reflink on
filesystems that share extents); a whole-file reflink (FICLONE) is tried
first. Snapshots that moto makes for its own AMIs hold no file: they read as
zeros.

For other extensions: volume_file(volume), snapshot_file(snapshot) give the
paths; set_snapshot_bytes(snapshot, image_path) gives a snapshot made some
other way (seeded images, say) the bytes of an image file.
"""

import base64
import copy
import errno
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
import uuid

from moto.ebs import models as ebs_models
from moto.ebs import responses as ebs_responses
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidParameterDependency,
    MissingParameterError,
)
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot, Volume, VolumeAttachment
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.utils import random_snapshot_id
from moto.core.responses import ActionResult
from moto.core.exceptions import JsonRESTError

import autoami_moto as core

GIB = 1 << 30
BLOCK_SIZE = 524288
_ZERO_BLOCK = bytes(BLOCK_SIZE)
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)

# Attachment changes (attach, detach, settling a busy detach, delete) are
# serialised: they move files and loop devices, and moto's models are not
# thread-safe. Byte copies of new files run outside it.
_LOCK = threading.RLock()

# Creation order of volumes' snapshots, so ListChangedBlocks can tell which of
# two snapshots is the older (start times may tie).
_SEQUENCE = itertools.count(1)

# Per thread: > 0 while moto constructs an Ami (it makes a throw-away 15 GiB
# volume and a snapshot of it for every built-in AMI: 1175 per account).
_LOCAL = threading.local()


def _making_ami():
    return getattr(_LOCAL, "ami_depth", 0) > 0


# --- Paths ----------------------------------------------------------------------


def volume_file(volume):
    """DATA_DIR/<account>/<region>/volumes/<vol-id>.img of a moto Volume."""
    backend = volume.ec2_backend
    return core.data_path(backend.account_id, backend.region_name, "volumes", f"{volume.id}.img")


def snapshot_file(snapshot):
    """DATA_DIR/<owner account>/<region>/snapshots/<snap-id>.img of a moto
    Snapshot (the file may be absent: see _snapshot_source)."""
    backend = snapshot.ec2_backend
    return core.data_path(backend.account_id, backend.region_name, "snapshots", f"{snapshot.id}.img")


def device_link(account, region, instance_id, volume_id):
    """Where an attached volume's file is hard-linked for the instance's daemon."""
    return core.data_path(account, region, "instances", os.path.join(instance_id, "devices", f"{volume_id}.img"))


def _staging(account, region, kind):
    """A fresh name in DATA_DIR/<account>/<region>/<kind>/ for a file being
    made; rename(2) onto its final name there commits it."""
    directory = core.data_path(account, region, kind)
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f".staging-{uuid.uuid4().hex}.img")


# --- Sparse files -------------------------------------------------------------------


def _new_sparse(path, size):
    with open(path, "xb") as f:
        f.truncate(size)


def _copy_range(src_fd, dst_fd, start, end):
    pos = start
    while pos < end:
        try:
            n = os.copy_file_range(src_fd, dst_fd, end - pos, pos, pos)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            n = 0
        if n == 0:  # not supported here, or a short copy: plain reads and writes
            data = os.pread(src_fd, min(end - pos, 8 << 20), pos)
            if not data:
                raise OSError(errno.EIO, f"source ends at {pos} inside a data extent")
            n = os.pwrite(dst_fd, data, pos)
        pos += n


def _data_extents(fd, size):
    """(start, end) of each data extent of an open file, in order."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after offset
                return
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        offset = end


def _copy_sparse(src, dst, size):
    """Make dst (which must not exist) a copy of src, size bytes long (at
    least src's size): holes stay holes, zeros are never written into one."""
    with open(src, "rb") as s, open(dst, "xb") as d:
        src_size = os.fstat(s.fileno()).st_size
        if size < src_size:
            raise ValueError(f"copy {src}: target size {size} is below the source's {src_size}")
        try:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        except OSError:
            d.truncate(src_size)
            for start, end in _data_extents(s.fileno(), src_size):
                _copy_range(s.fileno(), d.fileno(), start, end)
        if size > src_size:
            d.truncate(size)


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# --- Loop devices ---------------------------------------------------------------------


def _losetup(*args):
    out = subprocess.run(["losetup", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"losetup {' '.join(args)}: {out.stderr.strip() or out.returncode}")
    return out.stdout


def _loop_listing():
    """(loop device, backing file name as attached) of every bound loop
    device, read from sysfs (no process to start on every detach)."""
    try:
        names = os.listdir("/sys/block")
    except OSError:
        return []
    found = []
    for name in names:
        if not name.startswith("loop"):
            continue
        try:
            with open(f"/sys/block/{name}/loop/backing_file") as f:
                found.append((f"/dev/{name}", f.read().rstrip("\n")))
        except OSError:
            continue  # not bound
    return found


def _loops_of(path):
    """Loop devices whose backing file is path's inode (hard links included),
    as losetup --associated finds them."""
    try:
        want = os.stat(path)
    except FileNotFoundError:
        return []
    found = []
    for name, back in _loop_listing():
        if back.endswith(" (deleted)"):
            continue  # an inode no name leads to: not path's
        try:
            st = os.stat(back)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
            found.append(name)
    return found


def _busy(loop):
    """Whether something holds the loop device exclusively: a mounted
    filesystem on it or on one of its partitions, a device-mapper target."""
    try:
        fd = os.open(loop, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as exc:
        return exc.errno == errno.EBUSY
    os.close(fd)
    return False


def _detach_loops(path):
    """losetup -d every loop device on path's inode. A device still in use
    goes away when its last user lets go (the kernel's autoclear)."""
    for loop in _loops_of(path):
        _losetup("-d", loop)


def _loops_under(directory):
    """Loop devices whose backing file lies under directory (deleted ones too)."""
    prefix = directory.rstrip("/") + "/"
    return [name for name, back in _loop_listing() if back.startswith(prefix)]


def _detach_loops_named(path):
    """losetup -d the loop devices attached through this very name, not
    through other links of its inode (a snapshot's file may be a link of a
    shared, read-only disk image)."""
    path = os.path.realpath(path)
    for name, back in _loop_listing():
        if back in (path, path + " (deleted)"):
            _losetup("-d", name)


def _mounts_under(directory):
    """Mount points under directory, deepest first."""
    prefix = directory.rstrip("/") + "/"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")  # octal escapes: \040 for a space
            if point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)


# --- Snapshot bookkeeping ---------------------------------------------------------------
# A snapshot's size, lineage and creation order are kept on it: moto reads its
# size from the live volume (which may grow or go), and has no lineage.

_moto_snapshot_volume_size = Snapshot.volume_size


def _snapshot_volume_size(self):
    size = self.__dict__.get("_autoami_size")
    return size if size is not None else int(_moto_snapshot_volume_size.fget(self))


Snapshot.volume_size = property(_snapshot_volume_size)


def _remember(snap, size, lineage):
    snap.__dict__["_autoami_size"] = int(size)
    snap.__dict__["_autoami_lineage"] = lineage
    snap.__dict__["_autoami_seq"] = next(_SEQUENCE)


def _lineage(snap):
    return snap.__dict__.get("_autoami_lineage") or f"snapshot:{snap.id}"


def _snapshot_source(snap):
    """The file holding snap's bytes, or None when it holds only zeros."""
    if snap.__dict__.get("_autoami_holes"):
        return None
    path = snapshot_file(snap)
    if not os.path.exists(path):
        raise RuntimeError(f"snapshot {snap.id} has no bytes at {path} (made outside the harness's hooks?)")
    return path


def _stage_from_snapshot(snap, account, region, kind, size):
    """A staged file of size bytes holding snap's bytes (holes past them)."""
    staged = _staging(account, region, kind)
    source = _snapshot_source(snap)
    if source is None:
        _new_sparse(staged, size)
    else:
        _copy_sparse(source, staged, size)
    return staged


def set_snapshot_bytes(snap, image_path):
    """Give snap (any snapshot in a backend) the bytes of image_path, sized
    to the snapshot's volume size (image_path may be shorter, not longer)."""
    final = snapshot_file(snap)
    staged = _staging(snap.ec2_backend.account_id, snap.ec2_backend.region_name, "snapshots")
    _copy_sparse(image_path, staged, snap.volume_size * GIB)
    os.rename(staged, final)
    snap.__dict__.pop("_autoami_holes", None)
    _DIGESTS.pop(final, None)


# --- Built-in AMIs: no bytes ---------------------------------------------------------------
# moto makes a 15 GiB volume and a snapshot of it for each of its 1175
# built-in AMIs per account, and for RegisterImage/CopyImage/CreateImage
# images (the core drops those). They get no files: the snapshot reads as
# zeros.

_moto_ami_init = Ami.__init__


def _ami_init(self, *args, **kwargs):
    _LOCAL.ami_depth = getattr(_LOCAL, "ami_depth", 0) + 1
    try:
        _moto_ami_init(self, *args, **kwargs)
    finally:
        _LOCAL.ami_depth -= 1


Ami.__init__ = _ami_init

_core_ami_block_device_mappings = Ami.block_device_mappings


def _ami_block_device_mappings(self):
    # GAP: moto's built-in AMIs map their root with DeleteOnTermination false,
    # so each launch of one would leave its root volume (and file) behind.
    # AWS: public AMIs' root volumes are deleted on termination.
    mappings = _core_ami_block_device_mappings.fget(self)
    if self.__dict__.get("_autoami_bdm") is None:
        for mapping in mappings:
            if "Ebs" in mapping:
                mapping["Ebs"]["DeleteOnTermination"] = True
    return mappings


Ami.block_device_mappings = property(_ami_block_device_mappings)


# --- CreateVolume, DeleteVolume, ModifyVolume --------------------------------------------
# GAP: a volume is a row in a table. AWS: it holds bytes: zeros when new, the
# snapshot's bytes when made from one (its size at least the snapshot's:
# InvalidParameterValue otherwise); DeleteVolume refuses an attached volume
# (VolumeInUse); ModifyVolume may grow a volume, never shrink it.

_prev_create_volume = EBSBackend.create_volume


def _create_volume(self, size, zone_name, snapshot_id=None, encrypted=False, kms_key_id=None, **kwargs):
    if _making_ami():
        volume = _prev_create_volume(self, size, zone_name, snapshot_id, encrypted, kms_key_id, **kwargs)
        volume.__dict__["_autoami_no_file"] = True
        return volume
    snap = None
    if snapshot_id:
        snap = self.get_snapshot(snapshot_id)  # own or shared; InvalidSnapshot.NotFound otherwise
        if snap.status == "error":
            raise EC2ClientError("IncorrectState", f"Snapshot '{snapshot_id}' is in the 'error' state.")
        if size is not None and int(size) < snap.volume_size:
            raise EC2ClientError(
                "InvalidParameterValue",
                f"Volume of size {int(size)}GB is smaller than snapshot '{snapshot_id}', expect size >= {snap.volume_size}GB",
            )
    want = int(size) if size is not None else (snap.volume_size if snap is not None else None)
    staged = None
    if want is not None:
        if snap is not None:
            staged = _stage_from_snapshot(snap, self.account_id, self.region_name, "volumes", want * GIB)
        else:
            staged = _staging(self.account_id, self.region_name, "volumes")
            _new_sparse(staged, want * GIB)
    try:
        # The snapshot's size as it was taken (moto reads its volume's now).
        volume = _prev_create_volume(self, want, zone_name, snapshot_id, encrypted, kms_key_id, **kwargs)
    except BaseException:
        if staged:
            _remove(staged)
        raise
    volume.size = int(volume.size)
    os.rename(staged, volume_file(volume))
    return volume


EBSBackend.create_volume = _create_volume

_prev_delete_volume = EBSBackend.delete_volume


def _delete_volume(self, volume_id):
    if _making_ami():
        return _prev_delete_volume(self, volume_id)
    with _LOCK:
        volume = self.volumes.get(volume_id)
        if volume is not None:
            _settle(volume)
        deleted = _prev_delete_volume(self, volume_id)
        path = volume_file(deleted)
        _detach_loops(path)
        _remove(path)
        return deleted


EBSBackend.delete_volume = _delete_volume

_prev_modify_volume = EBSBackend.modify_volume


def _modify_volume(self, volume_id, target_size=None, *args, **kwargs):
    volume = self.get_volume(volume_id)
    if target_size is not None and int(target_size) < int(volume.size):
        raise EC2ClientError(
            "InvalidParameterValue",
            f"New size cannot be smaller than existing size ({int(target_size)}GiB < {int(volume.size)}GiB)",
        )
    volume = _prev_modify_volume(self, volume_id, int(target_size) if target_size is not None else None, *args, **kwargs)
    volume.size = int(volume.size)
    path = volume_file(volume)
    if os.path.exists(path) and os.path.getsize(path) < volume.size * GIB:
        os.truncate(path, volume.size * GIB)
        # GAP: a loop device keeps the size its file had when it was bound.
        # AWS: an attached volume's NVMe device shows the new size by itself
        # once the modification is optimizing. The unpacker's loop device of
        # the attached volume (its --local-devices link is a hard link of
        # this file) is told to read the new size.
        with _LOCK:
            for loop in _loops_of(path):
                _losetup("--set-capacity", loop)
    return volume


EBSBackend.modify_volume = _modify_volume


# --- CreateSnapshot, CopySnapshot, CopyImage, DeleteSnapshot ------------------------------
# GAP: a snapshot holds no bytes. AWS: CreateSnapshot captures the volume's
# bytes at the moment of the call (it stays pending while they are copied
# away); CopySnapshot and CopyImage copy them across regions and accounts;
# DeleteSnapshot deletes them.

_prev_create_snapshot = EBSBackend.create_snapshot


def _create_snapshot(self, volume_id, description, owner_id=None, from_ami=None):
    if from_ami is not None or _making_ami():
        snap = _prev_create_snapshot(self, volume_id, description, owner_id, from_ami)
        snap.__dict__["_autoami_holes"] = True
        return snap
    volume = self.get_volume(volume_id)
    staged = _staging(self.account_id, self.region_name, "snapshots")
    try:
        _copy_sparse(volume_file(volume), staged, int(volume.size) * GIB)
        snap = _prev_create_snapshot(self, volume_id, description, owner_id, from_ami)
    except BaseException:
        _remove(staged)
        raise
    _remember(snap, volume.size, f"volume:{volume.id}")
    os.rename(staged, snapshot_file(snap))
    return snap


EBSBackend.create_snapshot = _create_snapshot

_prev_copy_snapshot = EBSBackend.copy_snapshot


def _copy_snapshot(self, source_snapshot_id, source_region, description, kms_key_id, encrypted=False):
    source_backend = ec2_backends[self.account_id][source_region or self.region_name]
    source = source_backend.get_snapshot(source_snapshot_id)
    staged = _stage_from_snapshot(source, self.account_id, self.region_name, "snapshots", source.volume_size * GIB)
    try:
        snap = _prev_copy_snapshot(self, source_snapshot_id, source_region, description, kms_key_id, encrypted)
    except BaseException:
        _remove(staged)
        raise
    # AWS: a copy is a lineage of its own, incremental against earlier copies
    # of the same source lineage.
    _remember(snap, source.volume_size, f"copy:{_lineage(source)}")
    _zero_written(snap).update(_zero_written(source))
    os.rename(staged, snapshot_file(snap))
    return snap


EBSBackend.copy_snapshot = _copy_snapshot

_prev_copy_image = AmiBackend.copy_image


def _copy_image(self, source_image_id, source_region, name=None, description=None, **options):
    ami = _prev_copy_image(self, source_image_id, source_region, name, description, **options)
    source_backend = ec2_backends[self.account_id][source_region or self.region_name]
    source = core._visible_images(source_backend)[source_image_id]
    made = []
    try:
        for old, new in zip(source.block_device_mappings, ami.block_device_mappings):
            old_id = (old.get("Ebs") or {}).get("SnapshotId")
            new_id = (new.get("Ebs") or {}).get("SnapshotId")
            if not old_id or not new_id:
                continue
            src = source.ec2_backend.snapshots[old_id]
            snap = self.snapshots[new_id]
            staged = _stage_from_snapshot(src, self.account_id, self.region_name, "snapshots", src.volume_size * GIB)
            os.rename(staged, snapshot_file(snap))
            made.append(snap)
            _remember(snap, src.volume_size, f"copy:{_lineage(src)}")
            _zero_written(snap).update(_zero_written(src))
    except BaseException:
        # Leave nothing half-copied: the image and its snapshot copies go.
        self.amis.pop(ami.id, None)
        for mapping in ami.block_device_mappings:
            snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
            if snapshot_id:
                self.snapshots.pop(snapshot_id, None)
        for snap in made:
            _remove(snapshot_file(snap))
        raise
    return ami


AmiBackend.copy_image = _copy_image

_prev_delete_snapshot = EBSBackend.delete_snapshot


def _delete_snapshot(self, snapshot_id):
    deleted = _prev_delete_snapshot(self, snapshot_id)
    path = snapshot_file(deleted)
    _detach_loops_named(path)
    _remove(path)
    _DIGESTS.pop(path, None)
    ebs = ebs_models.ebs_backends[self.account_id][self.region_name]
    ebs.snapshots.pop(snapshot_id, None)
    return deleted


EBSBackend.delete_snapshot = _delete_snapshot


# --- AttachVolume, DetachVolume --------------------------------------------------------------
# GAP: AttachVolume accepts a volume that is attached (and TerminateInstances
# then fails), a device name in use and a volume of another zone;
# DetachVolume with only VolumeId answers 500; Force is ignored; detaching
# the root volume of a running instance is allowed; nothing reaches the
# instance. AWS (AttachVolume, DetachVolume references): VolumeInUse,
# InvalidParameterValue ("Attachment point ... is already in use"),
# InvalidVolume.ZoneMismatch; IncorrectState for a volume that is not
# attached and for the root volume of an instance that is not stopped; a
# volume whose filesystem is still mounted stays "busy" while detaching,
# until it is unmounted or the detach is forced (which the guest does not
# get to flush). Here the volume's file is hard-linked into the instance's
# devices directory at attach; a detach detaches the loop devices on it and
# removes the link; "mounted" is a loop device held exclusively; a forced
# detach of a busy volume gives the volume a copy of its file, so the
# instance's later writes no longer reach it.


def _attachment_delete_on_termination(self):
    mapping = self.instance.block_device_mapping.get(self.device)
    return bool(mapping.delete_on_termination) if mapping is not None else False


VolumeAttachment.delete_on_termination = property(_attachment_delete_on_termination)

_moto_attach_volume = EBSBackend.attach_volume
_moto_detach_volume = EBSBackend.detach_volume


def _attach_volume(self, volume_id, instance_id, device_path, delete_on_termination=False):
    with _LOCK:
        volume = self.get_volume(volume_id)
        instance = self.get_instance(instance_id)
        if not device_path:
            raise MissingParameterError("device")
        _settle(volume)
        if volume.attachment is not None:
            raise EC2ClientError("VolumeInUse", f"{volume_id} is already attached to an instance")
        if instance.state in ("terminated", "shutting-down"):
            raise EC2ClientError("IncorrectInstanceState", f"Instance '{instance_id}' is not 'running'.")
        if device_path in instance.block_device_mapping:
            raise EC2ClientError(
                "InvalidParameterValue",
                f"Invalid value '{device_path}' for unixDevice. Attachment point {device_path} is already in use",
            )
        if volume.zone is not None and volume.zone.name != instance._placement.zone:
            raise EC2ClientError(
                "InvalidVolume.ZoneMismatch",
                f"The volume '{volume_id}' is not in the same availability zone as instance '{instance_id}'",
            )
        link = device_link(self.account_id, self.region_name, instance.id, volume.id)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        _remove(link)
        os.link(volume_file(volume), link)
        try:
            return _moto_attach_volume(self, volume_id, instance_id, device_path, delete_on_termination)
        except BaseException:
            _remove(link)
            raise


def _finish_detach(backend, volume, force):
    """Let go of the volume's attachment now: loop devices, link, model."""
    att = volume.attachment
    link = device_link(backend.account_id, backend.region_name, att.instance.id, volume.id)
    if force and any(_busy(loop) for loop in _loops_of(link)):
        # Torn away: the volume keeps its bytes as of now in a new inode; the
        # old one lives on under whatever still has it mounted.
        path = volume_file(volume)
        staged = _staging(backend.account_id, backend.region_name, "volumes")
        _copy_sparse(path, staged, os.path.getsize(path))
        os.rename(staged, path)
    _detach_loops(link)
    _remove(link)
    att.__dict__.pop("_autoami_detaching", None)
    mapping = att.instance.block_device_mapping.get(att.device)
    if mapping is None or mapping.volume_id != volume.id:
        volume.attachment = None  # the instance forgot it (never, with these hooks)
        att.status = "detached"
        return att
    return _moto_detach_volume(backend, volume.id, att.instance.id, att.device)


def _settle(volume):
    """Finish a detach that waited for the volume to be unmounted, once it is."""
    att = volume.attachment
    if att is None or not att.__dict__.get("_autoami_detaching"):
        return
    with _LOCK:
        att = volume.attachment
        if att is None or not att.__dict__.get("_autoami_detaching"):
            return
        link = device_link(volume.ec2_backend.account_id, volume.ec2_backend.region_name, att.instance.id, volume.id)
        if any(_busy(loop) for loop in _loops_of(link)):
            return
        _finish_detach(volume.ec2_backend, volume, force=False)


def _detach_volume(self, volume_id, instance_id=None, device_path=None, force=False):
    with _LOCK:
        volume = self.get_volume(volume_id)
        _settle(volume)
        att = volume.attachment
        if att is None:
            raise EC2ClientError("IncorrectState", f"Volume '{volume_id}' is in the 'available' state.")
        if instance_id and att.instance.id != instance_id:
            raise EC2ClientError(
                "InvalidAttachment.NotFound", f"Volume '{volume_id}' is not attached to instance '{instance_id}'"
            )
        if device_path and att.device != device_path:
            raise EC2ClientError(
                "InvalidAttachment.NotFound", f"Volume '{volume_id}' is not attached as device '{device_path}'"
            )
        instance = att.instance
        if att.device == instance.root_device_name and instance.state != "stopped":
            raise EC2ClientError("IncorrectState", f"Unable to detach root volume '{volume_id}' from instance '{instance.id}'")
        link = device_link(self.account_id, self.region_name, instance.id, volume.id)
        if not force and any(_busy(loop) for loop in _loops_of(link)):
            att.__dict__["_autoami_detaching"] = True
            att.status = "busy"
            mapping = instance.block_device_mapping.get(att.device)
            if mapping is not None:
                mapping.status = "detaching"
            return att
        return _finish_detach(self, volume, force)


EBSBackend.attach_volume = _attach_volume
EBSBackend.detach_volume = _detach_volume


def _detach_volume_response(self):
    volume_id = self._get_param("VolumeId")
    instance_id = self._get_param("InstanceId")
    device = self._get_param("Device")
    force = core._bool(self._get_param("Force", False))
    self.error_on_dryrun()
    att = self.ec2_backend.detach_volume(volume_id, instance_id, device, force=force)
    return ActionResult(
        {
            "VolumeId": att.volume.id,
            "InstanceId": att.instance.id,
            "Device": att.device,
            "State": "detaching",
            "AttachTime": att.attach_time,
            "DeleteOnTermination": att.delete_on_termination,
        }
    )


ElasticBlockStore.detach_volume = _detach_volume_response

# A busy detach finishes when something looks: DescribeVolumes (status,
# attachments) and DescribeInstances (block device mappings).
_moto_volume_status = Volume.status
_moto_volume_attachments = Volume.attachments


def _volume_status(self):
    _settle(self)
    return _moto_volume_status.fget(self)


def _volume_attachments(self):
    _settle(self)
    return _moto_volume_attachments.fget(self)


Volume.status = property(_volume_status)
Volume.attachments = property(_volume_attachments)

_prev_instance_block_device_mappings = Instance.block_device_mappings


def _instance_block_device_mappings(self):
    for mapping in list(self.block_device_mapping.values()):
        volume = self.ec2_backend.volumes.get(mapping.volume_id)
        if volume is not None:
            _settle(volume)
    return _prev_instance_block_device_mappings.fget(self)


Instance.block_device_mappings = property(_instance_block_device_mappings)


# --- TerminateInstances ---------------------------------------------------------------------
# GAP: termination detaches through DetachVolume's checks (and fails on a
# volume attached twice). AWS: every volume is detached (forcibly: the
# instance is gone); those with DeleteOnTermination are deleted.


def _teardown_defaults(self):
    backend = self.ec2_backend
    with _LOCK:
        for device, mapping in list(self.block_device_mapping.items()):
            volume = backend.volumes.get(mapping.volume_id)
            if volume is not None and volume.attachment is not None and volume.attachment.instance is self:
                _finish_detach(backend, volume, force=True)
            else:
                self.block_device_mapping.pop(device, None)
            if mapping.delete_on_termination and volume is not None:
                backend.delete_volume(volume.id)


Instance.teardown_defaults = _teardown_defaults


# --- RunInstances: volumes from the image's block device mapping ---------------------------
# GAP: the root volume is a blank 8 GiB /dev/sda1 whatever the image says
# (SnapshotId null); BlockDeviceMappings replace the image's instead of
# amending them, and an entry must name a size or snapshot.
# AWS (RunInstances, "Block device mappings"): the image's mappings are the
# starting point: each EBS entry becomes a volume made from its snapshot
# (bytes, size, encryption and key, volume type, DeleteOnTermination); the
# request's entries amend them by device name (VolumeSize may grow a volume,
# not shrink it below its snapshot: InvalidBlockDeviceMapping; Encrypted and
# KmsKeyId encrypt it; NoDevice drops it) or add devices; an encrypted
# snapshot always gives an encrypted volume.

_EBS_KEYS = ("SnapshotId", "VolumeSize", "VolumeType", "DeleteOnTermination", "Encrypted", "KmsKeyId", "Iops",
             "Throughput")


def _parse_block_device_mapping_request(self):
    """The request's mappings as given: absent fields stay absent (moto
    fills in False, which cannot be told from an explicit false)."""
    mappings = []
    for req in self._get_param("BlockDeviceMappings", []) or []:
        mapping = {"DeviceName": req.get("DeviceName")}
        if "NoDevice" in req:
            mapping["NoDevice"] = ""
        if req.get("VirtualName"):
            mapping["VirtualName"] = req["VirtualName"]
        if req.get("Ebs") is not None:
            mapping["Ebs"] = {k: v for k, v in req["Ebs"].items() if v is not None}
        mappings.append(mapping)
    return mappings


InstanceResponse._parse_block_device_mapping = _parse_block_device_mapping_request


def _launch_mappings(backend, ami, requested):
    """The EBS volumes a launch makes: the image's mappings amended by the
    request's, validated, in moto's run_instances format."""
    by_device = {}
    for mapping in (ami.block_device_mappings if ami is not None else []):
        by_device[mapping["DeviceName"]] = copy.deepcopy(mapping)
    for req in requested:
        device = req.get("DeviceName")
        if not device:
            raise EC2ClientError("InvalidBlockDeviceMapping", "A device name is required for each block device mapping")
        if req.get("NoDevice") == "":
            by_device.pop(device, None)
            continue
        if req.get("VirtualName"):
            by_device[device] = {"DeviceName": device, "VirtualName": req["VirtualName"]}
            continue
        ebs = req.get("Ebs")
        if ebs is None:
            raise MissingParameterError("ebs")
        base = (by_device.get(device) or {}).get("Ebs")
        merged = dict(base or {})
        merged.update({k: v for k, v in ebs.items() if k in _EBS_KEYS and v is not None})
        if base is None and not merged.get("SnapshotId") and not merged.get("VolumeSize"):
            raise MissingParameterError("size or snapshotId")
        by_device[device] = {"DeviceName": device, "Ebs": merged}
    volumes = []
    for device, mapping in by_device.items():
        ebs = mapping.get("Ebs")
        if ebs is None:
            continue  # instance store
        snapshot_id = ebs.get("SnapshotId")
        size = ebs.get("VolumeSize")
        if snapshot_id:
            snap = backend.get_snapshot(snapshot_id)
            if size is None:
                size = snap.volume_size
            elif int(size) < snap.volume_size:
                raise EC2ClientError(
                    "InvalidBlockDeviceMapping",
                    f"Volume of size {int(size)}GB is smaller than snapshot '{snapshot_id}', expect size >= {snap.volume_size}GB",
                )
        encrypted = core._bool(ebs.get("Encrypted", False))
        kms_key_id = ebs.get("KmsKeyId")
        if kms_key_id and not encrypted:
            raise InvalidParameterDependency("KmsKeyId", "Encrypted")
        if kms_key_id:
            kms_key_id = core._resolve_kms_key(backend, kms_key_id)
        volumes.append({
            "DeviceName": device,
            "Ebs": {
                "SnapshotId": snapshot_id,
                "VolumeSize": int(size),
                "VolumeType": ebs.get("VolumeType"),
                "Encrypted": encrypted,
                "KmsKeyId": kms_key_id,
                "DeleteOnTermination": core._bool(ebs.get("DeleteOnTermination", True)),
            },
        })
    return volumes


_prev_run_instances = InstanceBackend.run_instances


def _run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
    if kwargs.get("launch_config"):
        return _prev_run_instances(self, image_id, count, user_data, security_group_names, **kwargs)
    requested = kwargs.get("block_device_mappings")
    template_image = None
    if kwargs.get("launch_template"):
        template = self._get_template_from_args(kwargs["launch_template"])
        template_image = template.image_id
        if requested is None:
            requested = template.data.get("BlockDeviceMappings") or []
    ami = core._visible_images(self).get(image_id or template_image) if (image_id or template_image) else None
    # GAP: the launch looked up the image's snapshots among the caller's own
    # and those shared with it for volume creation only.
    # AWS: launching an image shared with the account (by account,
    # organisation or publicly) needs no access to its snapshots: the root
    # volume is made from the owner's snapshot.
    _LOCAL.launch_snapshots = _owner_snapshots(self, ami)
    try:
        if ami is not None or requested:
            kwargs["block_device_mappings"] = _launch_mappings(self, ami, requested or [])
        return _prev_run_instances(self, image_id, count, user_data, security_group_names, **kwargs)
    finally:
        _LOCAL.launch_snapshots = {}


InstanceBackend.run_instances = _run_instances


def _owner_snapshots(backend, ami):
    """The snapshots behind another account's image, by ID, from its owner's
    backend in the same region; empty for the caller's own images."""
    if ami is None or ami.owner_id == backend.account_id:
        return {}
    owner = dict.get(dict.get(ec2_backends, ami.owner_id) or {}, backend.region_name)
    if owner is None:
        return {}
    found = {}
    for mapping in ami.block_device_mappings:
        snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
        snap = owner.snapshots.get(snapshot_id) if snapshot_id else None
        if snap is not None:
            found[snapshot_id] = snap
    return found


_prev_get_snapshot = EBSBackend.get_snapshot


def _get_snapshot_during_launch(self, snapshot_id):
    snap = (getattr(_LOCAL, "launch_snapshots", None) or {}).get(snapshot_id)
    if snap is not None:
        return snap
    return _prev_get_snapshot(self, snapshot_id)


EBSBackend.get_snapshot = _get_snapshot_during_launch


# --- EBS direct APIs on the snapshots' files ------------------------------------------------
# GAP: ListSnapshotBlocks/ListChangedBlocks send BlockIndex as a JSON string
# (aws-sdk-go-v2 cannot decode it), ignore pagination and parents, and know
# only blocks written with PutSnapshotBlock, so a CreateSnapshot snapshot is
# unreadable; unknown snapshots or blocks answer 500; StartSnapshot ignores
# ParentSnapshotId, Encrypted, KmsKeyArn, ClientToken and leaves a stray
# volume; PutSnapshotBlock checks nothing; the EC2 snapshot is "completed"
# before CompleteSnapshot.
# AWS (EBS direct API reference): BlockIndex is an integer; MaxResults
# 100..10000 with NextToken; the APIs read any snapshot of the account; a
# child snapshot holds its parent's blocks; ListChangedBlocks compares two
# snapshots of one lineage (of one volume, or copies of one source, or an
# EBS direct parent chain), else ValidationException UNRELATED_SNAPSHOTS;
# ResourceNotFoundException / ValidationException (with Reason); blocks are
# exactly 524288 bytes with a base64 SHA-256 checksum; ParentSnapshotId and
# Encrypted together are a ValidationException; the EC2 snapshot (VolumeId
# vol-ffffffff) is pending until CompleteSnapshot, which checks
# ChangedBlocksCount and the LINEAR checksum (mismatch: state error).
# Here a block is listed when its bytes are not all zeros or it was written
# with PutSnapshotBlock (into the snapshot, an EBS direct parent or a copy's
# source); an all-zero block a volume was written with is not listed (AWS
# lists it: it was written); the harness requires the first snapshot of
# ListChangedBlocks to be the older.

_EBS_CLIENT_TOKENS = {}
_ZERO_DIGEST = hashlib.sha256(_ZERO_BLOCK).digest()
# snapshot file -> ((inode, size, mtime), {block index: SHA-256 digest of a non-zero block})
_DIGESTS = {}


class EBSError(JsonRESTError):
    """restJson error with the X-Amzn-ErrorType header the SDKs read."""

    def __init__(self, error_type, message, reason=None, status=400):
        super().__init__(error_type, message)
        self.code = status
        body = {"Message": message, "message": message}
        if reason:
            body["Reason"] = reason
        self.description = json.dumps(body)

    def get_headers(self, *args, **kwargs):
        return [("X-Amzn-ErrorType", self.error_type), ("Content-Type", "application/json")]


def _not_found(what):
    return EBSError("ResourceNotFoundException", f"{what} does not exist", "SNAPSHOT_NOT_FOUND", 404)


def _ec2_snapshot(ebs, snapshot_id):
    """The account's own EC2 snapshot of that ID in the EBS backend's region."""
    snap = ebs.ec2_backend.snapshots.get(snapshot_id)
    if snap is None:
        raise _not_found(f"The snapshot {snapshot_id}")
    return snap


def _direct_snapshot(ebs, snapshot_id):
    """The EBS direct record of a snapshot started with StartSnapshot."""
    snap = ebs.snapshots.get(snapshot_id)
    if snap is None:
        if snapshot_id in ebs.ec2_backend.snapshots:
            raise EBSError("ValidationException", f"Snapshot {snapshot_id} was not started with StartSnapshot",
                           "INVALID_SNAPSHOT_ID")
        raise _not_found(f"The snapshot {snapshot_id}")
    return snap


def _zero_written(snap):
    """Indexes of all-zero blocks written with PutSnapshotBlock into snap or
    the snapshots its bytes came from (AWS lists written blocks, zeros too)."""
    return snap.__dict__.setdefault("_autoami_zero_written", set())


def _block_digests(snap):
    """{block index: SHA-256 digest} of snap's listed blocks: those not all
    zeros, and those written with PutSnapshotBlock."""
    digests = dict(_data_digests(snap))
    for idx in _zero_written(snap):
        digests.setdefault(idx, _ZERO_DIGEST)
    return digests


def _data_digests(snap):
    """{block index: SHA-256 digest} of snap's blocks that are not all zeros."""
    path = _snapshot_source(snap)
    if path is None:
        return {}
    st = os.stat(path)
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    cached = _DIGESTS.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    digests = {}
    with open(path, "rb") as f:
        fd = f.fileno()
        last = -1
        for start, end in _data_extents(fd, st.st_size):
            for idx in range(max(start // BLOCK_SIZE, last + 1), (end + BLOCK_SIZE - 1) // BLOCK_SIZE):
                data = os.pread(fd, BLOCK_SIZE, idx * BLOCK_SIZE)
                if data != _ZERO_BLOCK[: len(data)]:
                    digests[idx] = hashlib.sha256(data.ljust(BLOCK_SIZE, b"\0")).digest()
                last = idx
    _DIGESTS[path] = (key, digests)
    return digests


def _block_token(snap, idx, digest):
    raw = hashlib.sha256(f"{snap.id}/{idx}/".encode() + digest).digest()[:18]
    return base64.urlsafe_b64encode(raw).decode()


def _ebs_start_snapshot(self, volume_size, tags, description, parent=None, encrypted=None, kms_key_arn=None,
                        client_token=None):
    token_key = (self.account_id, self.region_name, client_token)
    if client_token and token_key in _EBS_CLIENT_TOKENS:
        return _EBS_CLIENT_TOKENS[token_key]
    if parent and encrypted is not None:
        raise EBSError("ValidationException", "You cannot specify both Encrypted and ParentSnapshotId",
                       "INVALID_PARAMETER_VALUE")
    if not isinstance(volume_size, int) or volume_size < 1 or volume_size > 65536:
        raise EBSError("ValidationException", f"VolumeSize {volume_size} must be 1..65536 GiB", "INVALID_VOLUME_SIZE")
    if kms_key_arn and not encrypted:
        raise EBSError("ValidationException", "KmsKeyArn requires Encrypted", "INVALID_PARAMETER_VALUE")
    ec2 = self.ec2_backend
    parent_snap = None
    if parent:
        parent_snap = ec2.snapshots.get(parent)
        if parent_snap is None:
            raise _not_found(f"The parent snapshot {parent}")
        if parent_snap.status != "completed":
            raise EBSError("ValidationException", f"The parent snapshot {parent} is {parent_snap.status}, not completed",
                           "INVALID_SNAPSHOT_ID")
        if volume_size < parent_snap.volume_size:
            raise EBSError("ValidationException",
                           f"VolumeSize {volume_size} is below the parent snapshot's {parent_snap.volume_size} GiB",
                           "INVALID_VOLUME_SIZE")
        is_encrypted, key = bool(parent_snap.encrypted), parent_snap.kms_key_id
    else:
        try:
            is_encrypted, key = core._encryption(ec2, False, bool(encrypted), kms_key_arn)
        except EC2ClientError as exc:
            raise EBSError("ValidationException", exc.message, "INVALID_PARAMETER_VALUE") from exc

    if parent_snap is not None:
        staged = _stage_from_snapshot(parent_snap, self.account_id, self.region_name, "snapshots", volume_size * GIB)
    else:
        staged = _staging(self.account_id, self.region_name, "snapshots")
        _new_sparse(staged, volume_size * GIB)
    # AWS: an EBS direct snapshot comes from no volume (VolumeId vol-ffffffff).
    volume = Volume(ec2, "vol-ffffffff", volume_size, None, encrypted=is_encrypted, kms_key_id=key)
    snap = Snapshot(ec2, random_snapshot_id(), volume=volume, description=description or "",
                    encrypted=is_encrypted, kms_key_id=key)
    snap.encrypted, snap.kms_key_id = is_encrypted, key
    if tags:
        snap.add_tags({t["Key"]: t.get("Value", "") for t in tags})
    snap.__dict__["_autoami_ebs_open"] = True
    _remember(snap, volume_size, _lineage(parent_snap) if parent_snap is not None else f"snapshot:{snap.id}")
    if parent_snap is not None:
        _zero_written(snap).update(_zero_written(parent_snap))
    os.rename(staged, snapshot_file(snap))
    ec2.snapshots[snap.id] = snap
    record = ebs_models.EBSSnapshot(account_id=self.account_id, snapshot=snap)
    record.parent_id = parent
    record.encrypted, record.kms_key_arn = is_encrypted, key
    record.written = {}  # block index -> checksum, for CompleteSnapshot
    self.snapshots[snap.id] = record
    if client_token:
        _EBS_CLIENT_TOKENS[token_key] = record
    return record


def _ebs_put_snapshot_block(self, snapshot_id, block_index, block_data, checksum, checksum_algorithm, data_length):
    record = _direct_snapshot(self, snapshot_id)
    if record.status != "pending":
        raise EBSError("ValidationException", f"Snapshot {snapshot_id} is {record.status}, not pending",
                       "INVALID_SNAPSHOT_ID")
    try:
        idx = int(block_index)
    except ValueError as exc:
        raise EBSError("ValidationException", f"BlockIndex {block_index!r} is not an integer", "INVALID_BLOCK") from exc
    if idx < 0 or idx >= record.volume_size * GIB // BLOCK_SIZE:
        raise EBSError("ValidationException", f"BlockIndex {idx} is outside the volume", "INVALID_BLOCK")
    data = block_data if isinstance(block_data, bytes) else (block_data or "").encode("latin-1")
    if len(data) != BLOCK_SIZE or str(data_length) != str(BLOCK_SIZE):
        raise EBSError("ValidationException",
                       f"Block data is {len(data)} bytes (DataLength {data_length}); want {BLOCK_SIZE}", "INVALID_BLOCK")
    if checksum_algorithm != "SHA256":
        raise EBSError("ValidationException", f"ChecksumAlgorithm {checksum_algorithm!r} is not SHA256", "INVALID_BLOCK")
    want = base64.b64encode(hashlib.sha256(data).digest()).decode()
    if checksum != want:
        raise EBSError("ValidationException", f"Checksum {checksum} does not match the block data ({want})",
                       "INVALID_BLOCK")
    path = snapshot_file(self.ec2_backend.snapshots[snapshot_id])
    with open(path, "r+b") as f:
        offset = idx * BLOCK_SIZE
        hole = data == _ZERO_BLOCK and next(_data_extents_from(f.fileno(), offset, offset + BLOCK_SIZE), None) is None
        if not hole:  # zeros are never written into a hole
            os.pwrite(f.fileno(), data, offset)
    _DIGESTS.pop(path, None)
    zeros = _zero_written(self.ec2_backend.snapshots[snapshot_id])
    if hole or data == _ZERO_BLOCK:
        zeros.add(idx)
    else:
        zeros.discard(idx)
    record.written[idx] = checksum
    return checksum, checksum_algorithm


def _data_extents_from(fd, start, end):
    """Data extents of fd overlapping [start, end)."""
    try:
        data = os.lseek(fd, start, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return
        raise
    if data < end:
        yield data, min(os.lseek(fd, data, os.SEEK_HOLE), end)


def _ebs_complete_snapshot(self, snapshot_id, changed_blocks_count=None, checksum=None, checksum_algorithm=None,
                           aggregation=None):
    record = _direct_snapshot(self, snapshot_id)
    if record.status != "pending":
        return {"Status": record.status}
    problem = None
    if changed_blocks_count is not None and int(changed_blocks_count) != len(record.written):
        problem = f"ChangedBlocksCount {changed_blocks_count} but {len(record.written)} blocks were written"
    if checksum and not problem:
        if checksum_algorithm != "SHA256" or aggregation != "LINEAR":
            raise EBSError("ValidationException", "Checksum needs ChecksumAlgorithm SHA256 and aggregation LINEAR",
                           "INVALID_PARAMETER_VALUE")
        # LINEAR: SHA-256 over the written blocks' digests in block order.
        digests = b"".join(base64.b64decode(record.written[i]) for i in sorted(record.written))
        if base64.b64encode(hashlib.sha256(digests).digest()).decode() != checksum:
            problem = "aggregate checksum does not match the blocks written"
    snap = self.ec2_backend.snapshots.get(snapshot_id)
    if snap is not None:
        snap.__dict__.pop("_autoami_ebs_open", None)
    if problem:
        # AWS: the snapshot ends in the error state instead of completing.
        record.status = "error"
        if snap is not None:
            snap.status = "error"
        return {"Status": "error"}
    record.status = "completed"
    if snap is not None:
        core._make_pending(snap, "snapshot")
    return {"Status": "completed"}


ebs_models.EBSBackend.start_snapshot = _ebs_start_snapshot
ebs_models.EBSBackend.complete_snapshot = _ebs_complete_snapshot
ebs_models.EBSBackend.put_snapshot_block = _ebs_put_snapshot_block


def _ebs_page(self, indexes):
    """StartingBlockIndex / MaxResults / NextToken over sorted block indexes."""
    params = self._get_params()
    start = int(params.get("startingBlockIndex") or 0)
    token = params.get("pageToken")
    if token:
        try:
            start = max(start, int(token))
        except ValueError as exc:
            raise EBSError("ValidationException", f"NextToken {token!r} is not valid", "INVALID_PAGE_TOKEN") from exc
    limit = int(params.get("maxResults") or 10000)
    if limit < 100 or limit > 10000:
        raise EBSError("ValidationException", f"MaxResults {limit} must be 100..10000", "INVALID_PARAMETER_VALUE")
    chosen = [i for i in sorted(indexes) if i >= start]
    page, rest = chosen[:limit], chosen[limit:]
    return page, (str(rest[0]) if rest else None)


def _ebs_list_response(snap, key, items, next_token):
    body = {key: items, "VolumeSize": snap.volume_size, "BlockSize": BLOCK_SIZE, "ExpiryTime": time.time() + 3600}
    if next_token:
        body["NextToken"] = next_token
    return json.dumps(body)


def _ebs_start_snapshot_response(self):
    params = json.loads(self.body or b"{}")
    record = self.ebs_backend.start_snapshot(
        volume_size=params.get("VolumeSize"),
        tags=params.get("Tags"),
        description=params.get("Description"),
        parent=params.get("ParentSnapshotId"),
        encrypted=params.get("Encrypted"),
        kms_key_arn=params.get("KmsKeyArn"),
        client_token=params.get("ClientToken"),
    )
    body = record.to_json()
    body["BlockSize"] = BLOCK_SIZE
    if record.parent_id:
        body["ParentSnapshotId"] = record.parent_id
    if record.encrypted and record.kms_key_arn:
        body["KmsKeyArn"] = record.kms_key_arn
    return 201, {"status": 201}, json.dumps(body)


def _ebs_complete_snapshot_response(self):
    snapshot_id = self.parsed_url.path.split("/")[-1]
    headers = {k.lower(): v for k, v in self.headers.items()}
    status = self.ebs_backend.complete_snapshot(
        snapshot_id=snapshot_id,
        changed_blocks_count=headers.get("x-amz-changedblockscount"),
        checksum=headers.get("x-amz-checksum"),
        checksum_algorithm=headers.get("x-amz-checksum-algorithm"),
        aggregation=headers.get("x-amz-checksum-aggregation-method"),
    )
    return 202, {"status": 202}, json.dumps(status)


def _ebs_get_snapshot_block_response(self):
    parts = self.parsed_url.path.split("/")
    snapshot_id, block_index = parts[-3], parts[-1]
    snap = _ec2_snapshot(self.ebs_backend, snapshot_id)
    try:
        idx = int(block_index)
    except ValueError as exc:
        raise EBSError("ValidationException", f"BlockIndex {block_index!r} is not an integer", "INVALID_BLOCK") from exc
    token = self._get_params().get("blockToken")
    if not token:
        raise EBSError("ValidationException", "BlockToken is required", "INVALID_BLOCK_TOKEN")
    path = _snapshot_source(snap)
    data = b""
    if path is not None and 0 <= idx < snap.volume_size * GIB // BLOCK_SIZE:
        with open(path, "rb") as f:
            data = os.pread(f.fileno(), BLOCK_SIZE, idx * BLOCK_SIZE)
    if not data or (data == _ZERO_BLOCK and idx not in _zero_written(snap)):
        raise EBSError("ResourceNotFoundException", f"Block {idx} of {snapshot_id} holds no data",
                       "SNAPSHOT_NOT_FOUND", 404)
    digest = hashlib.sha256(data).digest()
    if token != _block_token(snap, idx, digest):
        raise EBSError("ValidationException", f"BlockToken {token!r} is not the token of block {idx} of {snapshot_id}",
                       "INVALID_BLOCK_TOKEN")
    headers = {
        "x-amz-Checksum": base64.b64encode(digest).decode(),
        "x-amz-Checksum-Algorithm": "SHA256",
        "x-amz-Data-Length": str(BLOCK_SIZE),
    }
    return 200, headers, data


def _ebs_list_snapshot_blocks_response(self):
    snapshot_id = self.parsed_url.path.split("/")[-2]
    snap = _ec2_snapshot(self.ebs_backend, snapshot_id)
    digests = _block_digests(snap)
    page, next_token = _ebs_page(self, digests.keys())
    items = [{"BlockIndex": i, "BlockToken": _block_token(snap, i, digests[i])} for i in page]
    return _ebs_list_response(snap, "Blocks", items, next_token)


def _ebs_list_changed_blocks_response(self):
    second_id = self.parsed_url.path.split("/")[-2]
    first_id = self._get_params().get("firstSnapshotId")
    second = _ec2_snapshot(self.ebs_backend, second_id)
    first, first_digests = None, {}
    if first_id:
        first = _ec2_snapshot(self.ebs_backend, first_id)
        older = first.__dict__.get("_autoami_seq", 0) < second.__dict__.get("_autoami_seq", 0)
        if _lineage(first) != _lineage(second) or not older:
            raise EBSError("ValidationException",
                           f"{first_id} and {second_id} are not an older and a newer snapshot of one volume lineage",
                           "UNRELATED_SNAPSHOTS")
        first_digests = _block_digests(first)
    second_digests = _block_digests(second)
    changed = [i for i in set(first_digests) | set(second_digests) if first_digests.get(i) != second_digests.get(i)]
    page, next_token = _ebs_page(self, changed)
    items = []
    for idx in page:
        item = {"BlockIndex": idx}
        if idx in first_digests:
            item["FirstBlockToken"] = _block_token(first, idx, first_digests[idx])
        if idx in second_digests:
            item["SecondBlockToken"] = _block_token(second, idx, second_digests[idx])
        items.append(item)
    return _ebs_list_response(second, "ChangedBlocks", items, next_token)


ebs_responses.EBSResponse.start_snapshot = _ebs_start_snapshot_response
ebs_responses.EBSResponse.complete_snapshot = _ebs_complete_snapshot_response
ebs_responses.EBSResponse.get_snapshot_block = _ebs_get_snapshot_block_response
ebs_responses.EBSResponse.list_snapshot_blocks = _ebs_list_snapshot_blocks_response
ebs_responses.EBSResponse.list_changed_blocks = _ebs_list_changed_blocks_response


# --- Reset and stop ---------------------------------------------------------------------------


def _release_devices():
    """Unmount what is mounted under DATA_DIR and detach the loop devices of
    its files, so that they can be removed."""
    if not core.DATA_DIR or not os.path.isdir(core.DATA_DIR):
        return
    root = os.path.realpath(core.DATA_DIR)
    for point in _mounts_under(root):
        subprocess.run(["umount", "--lazy", point], capture_output=True)
    for loop in _loops_under(root):
        subprocess.run(["losetup", "-d", loop], capture_output=True)


def _reset():
    """Everything the world kept goes: files under DATA_DIR (the directory
    itself stays), client tokens, cached digests. Runs after the machines
    extension's reset has stopped the instances' daemons."""
    _EBS_CLIENT_TOKENS.clear()
    _DIGESTS.clear()
    _release_devices()
    if not core.DATA_DIR or not os.path.isdir(core.DATA_DIR):
        return
    for entry in os.listdir(core.DATA_DIR):
        path = os.path.join(core.DATA_DIR, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


core.RESET_HOOKS.append(_reset)
# At exit only devices are released: the files belong to whoever owns DATA_DIR.
core.STOP_HOOKS.append(_release_devices)

core.ADDITIONS.extend([
    "Volumes are sparse files DATA_DIR/<account>/<region>/volumes/<id>.img (CreateVolume: zeros or the "
    "snapshot's bytes, size not below the snapshot's; ModifyVolume grows them, and the loop device of an attached one "
    "sees the new size; DeleteVolume removes them)",
    "Snapshots hold bytes: CreateSnapshot copies the volume's file at the call; CopySnapshot and CopyImage "
    "copy them across regions and accounts; DeleteSnapshot removes them",
    "AttachVolume hard-links the volume's file into the instance's devices directory; VolumeInUse, device "
    "in use, InvalidVolume.ZoneMismatch; DetachVolume with VolumeId only, Force, busy while mounted, root "
    "volume of a running instance refused; TerminateInstances detaches all and deletes DeleteOnTermination "
    "volumes",
    "RunInstances makes volumes from the image's block device mapping (snapshot bytes, size, encryption, "
    "device name), amended by the request's BlockDeviceMappings",
    "EBS direct on the snapshots' bytes: ListSnapshotBlocks, GetSnapshotBlock and ListChangedBlocks for any "
    "snapshot of the account (non-zero blocks; lineage checked), StartSnapshot with ParentSnapshotId, "
    "Encrypted/KmsKeyArn, ClientToken; numeric BlockIndex, pagination, checksum and block size validation, "
    "ResourceNotFoundException/ValidationException instead of 500, EC2 snapshot pending until "
    "CompleteSnapshot",
])
