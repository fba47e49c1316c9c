"""autoami's AWS for tests: moto's own server plus the behaviour moto lacks.

Started by the Go package internal/testworld/moto (embedded there with
go:embed and written to a temporary file). It imports moto (5.2.x), patches a
few of moto's EC2 and EBS model classes in this process, and serves moto's own
WSGI application. moto itself stays untouched on disk.

Every addition below starts with a comment "GAP: ..." naming what moto does
not do and "AWS: ..." naming the AWS behaviour it follows, so that no test
claims coverage that only this harness provides. The list of additions is
also served at GET /autoami-harness/ and documented in
internal/testworld/README.md.

Extensions: further behaviour lives in sibling modules (autoami_*.py, listed in
EXTENSIONS), imported after this module's own patches. They import this module
as `autoami_moto` (the same module object, also when it runs as __main__) and
use its hooks: ADDITIONS (append a line per addition), RESET_HOOKS (called on
POST /moto-api/reset), CONTROL_ROUTES ((method, path) -> handler(environ) ->
(status, body)), STOP_HOOKS (called when the server exits) and DATA_DIR (the
directory for bytes the world keeps: volumes, snapshots, instance roots).

Control endpoint (JSON over HTTP, for tests; reset by POST /moto-api/reset):
  GET  /autoami-harness/          knobs in force and the list of additions
  POST /autoami-harness/pending   {"image": s, "imageCopy": s, "snapshot": s,
                                   "snapshotCopy": s}  seconds a new resource
                                   stays pending
  POST /autoami-harness/image     {"region", "imageId", "creationDate",
                                   "deprecationTime", "state", "stateReason"}
                                   overrides for one image (all accounts)
"""

import argparse
import copy
import datetime
import json
import re
import signal
import sys
import threading
import time

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidAMIIdError,
    InvalidParameterDependency,
    InvalidSnapshotIdError,
    InvalidSnapshotInUse,
    MalformedAMIIdError,
    MissingParameterError,
)
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.settings import Settings
from moto.ec2.utils import generic_filter, random_ami_id, random_snapshot_id
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)
from werkzeug.serving import run_simple

# Extensions import this module by name; when it runs as a script that name
# must resolve to this very module, not to a second copy of it.
sys.modules.setdefault("autoami_moto", sys.modules[__name__])

# Sibling modules imported after this module's patches (see the docstring).
EXTENSIONS = ["autoami_machines", "autoami_blocks", "autoami_fidelity", "autoami_seeds"]

# Hooks for extensions (see the docstring).
RESET_HOOKS = []
STOP_HOOKS = []
CONTROL_ROUTES = {}

# Directory for the bytes the world keeps; set by main (--data-dir).
DATA_DIR = None

# A bootable raw disk for seeded images' root snapshots; set by main
# (--boot-disk, from internal/testworld/bootdisk); None: seeded disks are empty.
BOOT_DISK = None


def data_path(account, region, kind, name=""):
    """Where the world keeps bytes: DATA_DIR/<account>/<region>/<kind>/<name>.

    kinds: "volumes" (<vol-id>.img, sparse, the volume's size), "snapshots"
    (<snap-id>.img, immutable once completed), "instances" (<instance-id>/,
    with root/ for the files user-data writes, devices/ for the daemon's
    --local-devices: hard links of the attached volumes' files, console.log).
    """
    import os

    path = os.path.join(DATA_DIR, account, region, kind)
    return os.path.join(path, name) if name else path

ADDITIONS = [
    "RegisterImage: BlockDeviceMappings, Architecture, VirtualizationType, "
    "EnaSupport, SriovNetSupport, BootMode, TpmSupport, ImdsSupport, "
    "RootDeviceName, TagSpecifications; missing/pending snapshot and duplicate "
    "name rejected",
    "DeleteSnapshot of a snapshot a registered image uses: InvalidSnapshot.InUse",
    "EnableImageDeprecation / DisableImageDeprecation, DeprecationTime, "
    "IncludeDeprecated",
    "DescribeImages: images shared by launch permission or public from other "
    "accounts (ImageIds, Owners, ExecutableUsers, no arguments)",
    "Snapshots shared by createVolumePermission usable from the other account "
    "(DescribeSnapshots, CreateVolume, CopySnapshot); OwnerIds, "
    "RestorableByUserIds; ModifySnapshotAttribute's CreateVolumePermission "
    "form; aws/ebs-encrypted snapshots cannot be shared",
    "CopyImage from shared images; Encrypted, KmsKeyId, CopyImageTags, "
    "TagSpecifications; copies the image attributes and its snapshots",
    "GetEbsDefaultKmsKeyId, ResetEbsDefaultKmsKeyId; encryption by default "
    "enforced for CreateVolume, CopySnapshot, CopyImage, StartSnapshot",
    "pending states for images, image copies and snapshots (knob)",
    "image CreationDate, DeprecationTime and State overrides (knob)",
]


# --- Harness state and control endpoint --------------------------------------


class Harness:
    """Knobs tests switch; POST /moto-api/reset restores the start values."""

    PENDING_KINDS = ("image", "imageCopy", "snapshot", "snapshotCopy")

    def __init__(self, start_pending):
        self.lock = threading.Lock()
        self.start_pending = {k: float(start_pending.get(k, 0)) for k in self.PENDING_KINDS}
        self.reset()

    def reset(self):
        with self.lock:
            self.pending = dict(self.start_pending)
            # (region, image id) -> {"creation_date", "deprecation_time",
            # "state", "state_reason"}; applies in every account, because
            # moto keeps one copy of each built-in AMI per account.
            self.image_overrides = {}

    def ready_at(self, kind):
        """Epoch seconds at which a resource of this kind made now completes."""
        return time.time() + self.pending.get(kind, 0.0)

    def override(self, region, image_id):
        return self.image_overrides.get((region, image_id), {})


HARNESS = Harness({})


def _parse_time(value, field):
    """RFC 3339 text -> naive UTC datetime (moto's convention)."""
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"{field}: {value!r} is not an RFC 3339 time") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


class HarnessApp:
    """WSGI wrapper: /autoami-harness/ control calls, reset hook, moto for the rest."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/autoami-harness/"):
            try:
                status, body = self.control(method, path, environ)
            except ValueError as exc:
                status, body = "400 Bad Request", {"error": str(exc)}
            data = json.dumps(body).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        if path.rstrip("/") == "/moto-api/reset" and method == "POST":
            HARNESS.reset()
            for hook in RESET_HOOKS:
                hook()
        return self.inner(environ, start_response)

    @staticmethod
    def _json_body(environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    def control(self, method, path, environ):
        route = CONTROL_ROUTES.get((method, path))
        if route is not None:
            return route(environ)
        if path == "/autoami-harness/" and method == "GET":
            return "200 OK", {"pending": HARNESS.pending, "additions": ADDITIONS}
        if path == "/autoami-harness/pending" and method == "POST":
            body = self._json_body(environ)
            unknown = set(body) - set(Harness.PENDING_KINDS)
            if unknown:
                raise ValueError(f"pending: unknown kinds {sorted(unknown)}")
            with HARNESS.lock:
                for kind, seconds in body.items():
                    if not isinstance(seconds, (int, float)) or seconds < 0:
                        raise ValueError(f"pending.{kind}: want seconds >= 0, got {seconds!r}")
                    HARNESS.pending[kind] = float(seconds)
            return "200 OK", {"pending": HARNESS.pending}
        if path == "/autoami-harness/image" and method == "POST":
            body = self._json_body(environ)
            region, image_id = body.get("region"), body.get("imageId")
            if not region or not image_id:
                raise ValueError("image: region and imageId are required")
            entry = {}
            if "creationDate" in body:
                entry["creation_date"] = _parse_time(body["creationDate"], "creationDate")
            if "deprecationTime" in body:
                text = body["deprecationTime"]
                entry["deprecation_time"] = _parse_time(text, "deprecationTime") if text else None
            if "state" in body:
                if body["state"] not in ("", "available", "pending", "failed", "invalid", "error", "transient", "deregistered", "disabled"):
                    raise ValueError(f"state: {body['state']!r} is not an image state")
                entry["state"] = body["state"] or None
                entry["state_reason"] = body.get("stateReason") or None
            with HARNESS.lock:
                HARNESS.image_overrides.setdefault((region, image_id), {}).update(entry)
            return "200 OK", {"imageId": image_id, "region": region}
        return "404 Not Found", {"error": f"no harness endpoint {method} {path}"}


# --- Helpers ----------------------------------------------------------------


def _iso(dt):
    """AWS's text timestamp for EC2 string fields: 2026-01-02T03:04:05.000Z."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _region_backends(region):
    """(account, EC2 backend) for every account that has used region.

    Reads moto's backend dictionaries without creating backends, which would
    load 1175 built-in AMIs per account.
    """
    for account in list(dict.keys(ec2_backends)):
        backend = dict.get(dict.__getitem__(ec2_backends, account), region)
        if backend is not None:
            yield account, backend


def _launchable_by(ami, account):
    return ami.is_public or {"UserId": account} in ami.launch_permissions


def _visible_images(backend):
    """Images the backend's account may see in its region: its own, the
    built-ins, and other accounts' images that are public or name it."""
    images = dict(backend.amis)
    for account, other in _region_backends(backend.region_name):
        if account == backend.account_id:
            continue
        for ami in list(other.amis.values()):
            if ami.owner_id == account and _launchable_by(ami, backend.account_id):
                images.setdefault(ami.id, ami)
    return images


def _shared_snapshot(backend, snapshot_id):
    """Another account's snapshot in the same region that is public or whose
    createVolumePermission names the backend's account, else None."""
    for account, other in _region_backends(backend.region_name):
        if account == backend.account_id:
            continue
        snap = other.snapshots.get(snapshot_id)
        if snap is not None and (
            "all" in snap.create_volume_permission_groups
            or backend.account_id in snap.create_volume_permission_userids
        ):
            return snap
    return None


def _default_kms_key_arn(backend):
    """The account's default EBS key (ModifyEbsDefaultKmsKeyId, else aws/ebs)."""
    if not backend.default_kms_key_id:
        backend._create_default_encryption_key()
    return backend.default_kms_key_id


def _resolve_kms_key(backend, key_id):
    """KmsKeyId as given (ID, ARN, alias, alias ARN) -> the key's ARN."""
    from moto.kms.models import kms_backends

    account, region = backend.account_id, backend.region_name
    if key_id.startswith("arn:"):
        parts = key_id.split(":")
        if len(parts) >= 6:
            region, account = parts[3], parts[4]
    try:
        return kms_backends[account][region].describe_key(key_id).arn
    except Exception as exc:  # moto raises KeyError or NotFoundException
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Invalid value '{key_id}' for KmsKeyId: no such KMS key in account {account}, region {region}",
        ) from exc


def _encryption(backend, source_encrypted, want_encrypted, kms_key_id):
    """Encryption of a new copy or volume, as AWS decides it.

    AWS: a copy of an encrypted snapshot is encrypted; an unencrypted one is
    encrypted when Encrypted=true or encryption by default is on; KmsKeyId
    needs Encrypted=true; without KmsKeyId the account's default EBS key is
    used (CopySnapshot/CopyImage API reference, "Encryption by default").
    """
    if kms_key_id and not want_encrypted:
        raise InvalidParameterDependency("KmsKeyId", "Encrypted")
    encrypted = bool(source_encrypted or want_encrypted or getattr(backend, "ebs_encryption_by_default", False))
    if not encrypted:
        return False, None
    if kms_key_id:
        return True, _resolve_kms_key(backend, kms_key_id)
    return True, _default_kms_key_arn(backend)


# AWS: AMI names are 3-128 characters of letters, numbers, ( ) [ ] space . / - ' @ _
_AMI_NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")


def _check_new_image_name(backend, name):
    # GAP: moto accepts any name, twice. AWS: InvalidAMIName.Malformed, and
    # InvalidAMIName.Duplicate when the account already has an image of that
    # name in the region.
    if not name:
        raise MissingParameterError("name")
    if not _AMI_NAME.match(name):
        raise EC2ClientError(
            "InvalidAMIName.Malformed",
            f"AMI names must be between 3 and 128 characters long, and may contain letters, numbers, "
            f"'(', ')', '.', '-', '/', '[', ']', ' ', '@', ''', and '_': {name}",
        )
    for ami in backend.amis.values():
        if ami.name == name and ami.owner_id == backend.account_id:
            raise EC2ClientError("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}")


def _drop_auto_snapshot(backend, ami):
    """moto's Ami() always makes a 15 GiB snapshot; images with real block
    device mappings do not want it."""
    auto = getattr(ami, "ebs_snapshot", None)
    if auto is not None:
        backend.snapshots.pop(auto.id, None)


# --- Pending states -----------------------------------------------------------
# GAP: every image and snapshot is available/completed at once.
# AWS: RegisterImage/CreateImage/CopyImage images are "pending" and snapshots
# "pending" (progress rising) until done; copies take minutes. The knob
# /autoami-harness/pending sets how long, per kind, so waiters are exercised.


def _ami_state(self):
    over = HARNESS.override(self.ec2_backend.region_name, self.id)
    if over.get("state"):
        return over["state"]
    ready = self.__dict__.get("_autoami_ready_at")
    if ready is not None and time.time() < ready:
        return "pending"
    return self.__dict__.get("_autoami_state", "available")


def _ami_set_state(self, value):
    self.__dict__["_autoami_state"] = value


def _ami_state_reason(self):
    over = HARNESS.override(self.ec2_backend.region_name, self.id)
    reason = over.get("state_reason")
    if reason:
        return {"Code": "Client.HarnessStateOverride", "Message": reason}
    return None


Ami.state = property(_ami_state, _ami_set_state)
Ami.state_reason = property(_ami_state_reason)


def _snapshot_status(self):
    if self.__dict__.get("_autoami_ebs_open"):
        return "pending"  # EBS direct snapshot not yet completed
    ready = self.__dict__.get("_autoami_ready_at")
    if ready is not None and time.time() < ready:
        return "pending"
    return self.__dict__.get("_autoami_status", "completed")


def _snapshot_set_status(self, value):
    self.__dict__["_autoami_status"] = value


def _snapshot_progress(self):
    if _snapshot_status(self) == "completed":
        return "100%"
    ready, began = self.__dict__.get("_autoami_ready_at"), self.__dict__.get("_autoami_began_at")
    if self.__dict__.get("_autoami_ebs_open") or ready is None or began is None or ready <= began:
        return "0%"
    return f"{int(99 * (time.time() - began) / (ready - began))}%"


Snapshot.status = property(_snapshot_status, _snapshot_set_status)
Snapshot.progress = property(_snapshot_progress)


def _make_pending(resource, kind):
    resource.__dict__["_autoami_began_at"] = time.time()
    resource.__dict__["_autoami_ready_at"] = HARNESS.ready_at(kind)


# --- Image attributes ---------------------------------------------------------
# GAP: moto's Ami has no EnaSupport, TpmSupport, ImdsSupport, DeprecationTime,
# and its block device mapping is always one fake 15 GiB snapshot.
# AWS: DescribeImages returns what RegisterImage/CopyImage set (Image shape).

Ami.ena_support = None
Ami.tpm_support = None
Ami.imds_support = None
Ami.uefi_data = None
Ami.source_image_id = None
Ami.source_image_region = None
Ami.platform_details = "Linux/UNIX"
Ami.usage_operation = "RunInstances"
# DescribeImageAttribute looks these up under moto's own (mis)spelt names.
Ami.tmp = property(lambda self: self.tpm_support)
Ami.imds = property(lambda self: self.imds_support)
Ami.uefi = property(lambda self: self.uefi_data)
Ami.lld = None
Ami.ramdisk = None
Ami.sriov_net_support = property(lambda self: self.sriov)

_moto_ami_bdm = Ami.block_device_mappings


def _ami_block_device_mappings(self):
    own = self.__dict__.get("_autoami_bdm")
    return copy.deepcopy(own) if own is not None else _moto_ami_bdm.fget(self)


Ami.block_device_mappings = property(_ami_block_device_mappings)


def _ami_creation_date(self):
    over = HARNESS.override(self.ec2_backend.region_name, self.id)
    return over.get("creation_date") or self.__dict__.get("_autoami_creation_date")


def _ami_set_creation_date(self, value):
    self.__dict__["_autoami_creation_date"] = value


# GAP: every built-in AMI has the same CreationDate (moto's load time).
# Harness knob: /autoami-harness/image {"creationDate"} sets it per image.
Ami.creation_date = property(_ami_creation_date, _ami_set_creation_date)


def _ami_deprecate_at(self):
    """Naive UTC datetime of deprecation, or None."""
    over = HARNESS.override(self.ec2_backend.region_name, self.id)
    if "deprecation_time" in over:
        return over["deprecation_time"]
    return self.__dict__.get("_autoami_deprecate_at")


def _ami_is_deprecated(ami):
    at = _ami_deprecate_at(ami)
    return at is not None and at <= utcnow()


Ami.deprecation_time = property(lambda self: _iso(_ami_deprecate_at(self)) if _ami_deprecate_at(self) else None)

_moto_ami_filter = Ami.get_filter_value


def _ami_get_filter_value(self, filter_name, method_name=None):
    # GAP: moto lacks these DescribeImages filters. AWS: documented filters
    # block-device-mapping.*, ena-support, root-device-*, sriov-net-support,
    # creation-date, image-type, hypervisor, description.
    mappings = self.block_device_mappings
    if filter_name == "block-device-mapping.snapshot-id":
        return [m["Ebs"].get("SnapshotId") for m in mappings if "Ebs" in m]
    if filter_name == "block-device-mapping.encrypted":
        return [str(bool(m["Ebs"].get("Encrypted"))).lower() for m in mappings if "Ebs" in m]
    if filter_name == "block-device-mapping.volume-size":
        return [str(m["Ebs"].get("VolumeSize")) for m in mappings if "Ebs" in m]
    if filter_name == "block-device-mapping.volume-type":
        return [m["Ebs"].get("VolumeType") for m in mappings if "Ebs" in m]
    if filter_name == "block-device-mapping.device-name":
        return [m.get("DeviceName") for m in mappings]
    if filter_name == "block-device-mapping.delete-on-termination":
        return [str(bool(m["Ebs"].get("DeleteOnTermination"))).lower() for m in mappings if "Ebs" in m]
    if filter_name == "ena-support":
        return str(bool(self.ena_support)).lower()
    if filter_name == "root-device-name":
        return self.root_device_name
    if filter_name == "root-device-type":
        return self.root_device_type
    if filter_name == "sriov-net-support":
        return self.sriov
    if filter_name == "creation-date":
        return _iso(self.creation_date)
    if filter_name == "image-type":
        return self.image_type
    if filter_name == "hypervisor":
        return self.hypervisor
    if filter_name == "description":
        return self.description
    return _moto_ami_filter(self, filter_name, method_name)


Ami.get_filter_value = _ami_get_filter_value


# --- RegisterImage --------------------------------------------------------------
# GAP: moto's RegisterImage uses Name and Description only.
# AWS: RegisterImage API reference — the block device mapping names snapshots
# the caller owns; the root device name must be one of its devices; volume size
# defaults to, and may not be below, the snapshot's; defaults: Architecture
# i386, VirtualizationType paravirtual; TpmSupport v2.0 needs BootMode uefi;
# TagSpecifications may only tag the image.

_ARCHITECTURES = ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac")
_BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")


def _invalid(param, value, allowed):
    return EC2ClientError(
        "InvalidParameterValue",
        f"Value ({value}) for parameter {param} is invalid. Valid values: {', '.join(allowed)}",
    )


def _bool(value):
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _register_mappings(backend, requested, root_device_name):
    mappings = []
    for req in requested:
        device = req.get("DeviceName")
        if not device:
            raise EC2ClientError("InvalidBlockDeviceMapping", "A device name is required for each block device mapping")
        mapping = {"DeviceName": device}
        if req.get("VirtualName"):
            mapping["VirtualName"] = req["VirtualName"]
        if "NoDevice" in req:
            mapping["NoDevice"] = ""
        ebs = req.get("Ebs")
        if ebs is not None:
            snapshot_id = ebs.get("SnapshotId")
            size = ebs.get("VolumeSize")
            out = {
                "DeleteOnTermination": _bool(ebs.get("DeleteOnTermination", True)),
                "VolumeType": ebs.get("VolumeType") or "standard",
            }
            if snapshot_id:
                snap = backend.snapshots.get(snapshot_id)
                if snap is None:
                    raise EC2ClientError("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")
                if snap.status != "completed":
                    raise EC2ClientError(
                        "IncorrectState", f"Snapshot '{snapshot_id}' is not 'completed' (it is '{snap.status}')"
                    )
                if size is None:
                    size = snap.volume_size
                elif int(size) < snap.volume_size:
                    raise EC2ClientError(
                        "InvalidBlockDeviceMapping",
                        f"Volume of size {size}GB is smaller than snapshot '{snapshot_id}', expect size >= {snap.volume_size}GB",
                    )
                out["SnapshotId"] = snapshot_id
                out["Encrypted"] = bool(snap.encrypted)
            elif device == root_device_name:
                raise EC2ClientError(
                    "InvalidBlockDeviceMapping", f"The root device {device} needs a snapshot in its block device mapping"
                )
            else:
                out["Encrypted"] = _bool(ebs.get("Encrypted", False))
            if size is not None:
                out["VolumeSize"] = int(size)
            for key in ("Iops", "Throughput"):
                if ebs.get(key) is not None:
                    out[key] = int(ebs[key])
            mapping["Ebs"] = out
        mappings.append(mapping)
    if mappings and root_device_name not in [m["DeviceName"] for m in mappings]:
        raise EC2ClientError(
            "InvalidBlockDeviceMapping",
            f"The root device name {root_device_name} is not in the block device mapping",
        )
    return mappings


def _register_image(self, params):
    name = params.get("Name")
    _check_new_image_name(self, name)
    architecture = params.get("Architecture") or "i386"
    if architecture not in _ARCHITECTURES:
        raise _invalid("architecture", architecture, _ARCHITECTURES)
    virtualization = params.get("VirtualizationType") or "paravirtual"
    if virtualization not in ("hvm", "paravirtual"):
        raise _invalid("virtualizationType", virtualization, ("hvm", "paravirtual"))
    sriov = params.get("SriovNetSupport")
    if sriov is not None and sriov != "simple":
        raise _invalid("sriovNetSupport", sriov, ("simple",))
    boot_mode = params.get("BootMode")
    if boot_mode is not None and boot_mode not in _BOOT_MODES:
        raise _invalid("bootMode", boot_mode, _BOOT_MODES)
    tpm = params.get("TpmSupport")
    if tpm is not None:
        if tpm != "v2.0":
            raise _invalid("tpmSupport", tpm, ("v2.0",))
        if boot_mode != "uefi":
            raise EC2ClientError("InvalidParameterCombination", "TpmSupport v2.0 requires BootMode uefi")
    imds = params.get("ImdsSupport")
    if imds is not None and imds != "v2.0":
        raise _invalid("imdsSupport", imds, ("v2.0",))
    tags = {}
    for spec in params.get("TagSpecifications") or []:
        if spec.get("ResourceType") != "image":
            raise EC2ClientError(
                "InvalidParameterValue",
                f"'{spec.get('ResourceType')}' is not a valid taggable resource type for this operation.",
            )
        for tag in spec.get("Tags") or []:
            tags[tag["Key"]] = tag.get("Value", "")
    root_device_name = params.get("RootDeviceName")
    requested = params.get("BlockDeviceMappings") or []
    if requested and not root_device_name:
        raise MissingParameterError("rootDeviceName")
    mappings = _register_mappings(self, requested, root_device_name)

    ami_id = random_ami_id()
    ami = Ami(
        self,
        ami_id,
        name=name,
        description=params.get("Description"),
        virtualization_type=virtualization,
        architecture=architecture,
        root_device_name=root_device_name or "/dev/sda1",
        root_device_type="ebs" if mappings else "instance-store",
        sriov=sriov,
        boot_mode=boot_mode,
        hypervisor="xen",
        region_name=f"{self.region_name}a",
        tags=tags or None,
    )
    if mappings:
        _drop_auto_snapshot(self, ami)
        ami.__dict__["_autoami_bdm"] = mappings
    ami.image_location = params.get("ImageLocation") or f"{self.account_id}/{name}"
    ami.ena_support = _bool(params["EnaSupport"]) if params.get("EnaSupport") is not None else None
    ami.tpm_support = tpm
    ami.imds_support = imds
    ami.uefi_data = params.get("UefiData")
    ami.kernel_id = params.get("KernelId")
    _make_pending(ami, "image")
    self.amis[ami_id] = ami
    return ami


def _register_image_response(self):
    self.error_on_dryrun()
    params = {
        key: self._get_param(key)
        for key in (
            "Name",
            "Description",
            "ImageLocation",
            "Architecture",
            "VirtualizationType",
            "RootDeviceName",
            "BlockDeviceMappings",
            "EnaSupport",
            "SriovNetSupport",
            "BootMode",
            "TpmSupport",
            "ImdsSupport",
            "UefiData",
            "KernelId",
            "TagSpecifications",
        )
    }
    image = _register_image(self.ec2_backend, params)
    return ActionResult({"ImageId": image.id})


AmiBackend.autoami_register_image = _register_image
AmisResponse.register_image = _register_image_response

_moto_create_image = AmiBackend.create_image


def _create_image(self, instance_id, name, description, tag_specifications):
    # GAP: CreateImage accepts duplicate names and is available at once.
    # AWS: InvalidAMIName.Duplicate; the image is pending while it is made.
    _check_new_image_name(self, name)
    ami = _moto_create_image(self, instance_id, name, description, tag_specifications)
    _make_pending(ami, "image")
    return ami


AmiBackend.create_image = _create_image


# --- DeleteSnapshot while an image uses it ------------------------------------


def _images_using(backend, snapshot_id):
    for ami in list(backend.amis.values()):
        own = ami.__dict__.get("_autoami_bdm")
        if own and any(m.get("Ebs", {}).get("SnapshotId") == snapshot_id for m in own):
            yield ami


_moto_delete_snapshot = EBSBackend.delete_snapshot


def _delete_snapshot(self, snapshot_id):
    # GAP: moto only protects the snapshots it made for its own AMIs.
    # AWS: a snapshot in an image's block device mapping cannot be deleted
    # until the image is deregistered (InvalidSnapshot.InUse).
    for ami in _images_using(self, snapshot_id):
        raise InvalidSnapshotInUse(snapshot_id, ami.id)
    return _moto_delete_snapshot(self, snapshot_id)


EBSBackend.delete_snapshot = _delete_snapshot


# --- Image deprecation -------------------------------------------------------------
# GAP: Enable/DisableImageDeprecation answer 500; DeprecationTime never shows.
# AWS (ami-deprecate.html, EnableImageDeprecation reference): the owner sets a
# time (seconds rounded to the nearest minute, not in the past, at most 10
# years ahead); DescribeImages shows DeprecationTime; once it has passed, the
# image is left out of listings for everyone but its owner unless
# IncludeDeprecated=true or its ID is asked for.


def _owned_image(backend, image_id):
    if not image_id or not image_id.startswith("ami-"):
        raise MalformedAMIIdError([image_id])
    ami = backend.amis.get(image_id)
    if ami is not None and ami.owner_id == backend.account_id:
        return ami
    if image_id in _visible_images(backend):
        raise EC2ClientError("AuthFailure", f"Not authorized for image:{image_id}")
    raise InvalidAMIIdError(image_id)


def _enable_image_deprecation(self):
    self.error_on_dryrun()
    ami = _owned_image(self.ec2_backend, self._get_param("ImageId"))
    when = self._get_param("DeprecateAt")
    if when is None:
        raise MissingParameterError("DeprecateAt")
    if isinstance(when, str):
        when = _parse_time(when, "DeprecateAt")
    elif when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    when = (when + datetime.timedelta(seconds=30)).replace(second=0, microsecond=0)
    now = utcnow()
    if when < now.replace(second=0, microsecond=0):
        raise EC2ClientError("InvalidParameterValue", f"DeprecateAt {_iso(when)} is in the past")
    if when > now + datetime.timedelta(days=3653):
        raise EC2ClientError("InvalidParameterValue", f"DeprecateAt {_iso(when)} is more than 10 years ahead")
    ami.__dict__["_autoami_deprecate_at"] = when
    HARNESS.override(self.ec2_backend.region_name, ami.id).pop("deprecation_time", None)
    return ActionResult({"Return": True})


def _disable_image_deprecation(self):
    self.error_on_dryrun()
    ami = _owned_image(self.ec2_backend, self._get_param("ImageId"))
    ami.__dict__.pop("_autoami_deprecate_at", None)
    HARNESS.override(self.ec2_backend.region_name, ami.id).pop("deprecation_time", None)
    return ActionResult({"Return": True})


AmisResponse.enable_image_deprecation = _enable_image_deprecation
AmisResponse.disable_image_deprecation = _disable_image_deprecation


# --- DescribeImages: cross-account visibility and IncludeDeprecated -----------
# GAP: moto only looks at the caller's own account; ExecutableUsers=self also
# returns public images; IncludeDeprecated is ignored.
# AWS (DescribeImages reference): without arguments, the caller's images,
# public images and images shared with it; ImageIds finds any of those (an
# unknown or invisible ID is InvalidAMIID.NotFound); Owners scopes by owner
# account ID, self or alias; ExecutableUsers=self (or the own ID) returns
# images shared with the caller explicitly, another ID those shared with it,
# all the public ones.


def _describe_images(self, ami_ids=None, filters=None, exec_users=None, owners=None, include_deprecated=False):
    me = self.account_id
    visible = _visible_images(self)
    if ami_ids:
        malformed = [i for i in ami_ids if not i.startswith("ami-")]
        if malformed:
            raise MalformedAMIIdError(malformed)
        images = [visible[i] for i in ami_ids if i in visible]
        missing = [i for i in ami_ids if i not in visible and i not in self.deleted_amis]
        if missing:
            raise InvalidAMIIdError(missing)
    else:
        images = list(visible.values())
        if exec_users:
            users = {me if u == "self" else u for u in exec_users}

            def executable(ami):
                if "all" in users and ami.is_public:
                    return True
                return any({"UserId": u} in ami.launch_permissions for u in users if u != "all")

            images = [a for a in images if executable(a)]
        if owners:
            wanted = {me if o == "self" else o for o in owners}
            images = [a for a in images if a.owner_id in wanted or a.owner_alias in wanted]
        if not include_deprecated:
            images = [a for a in images if a.owner_id == me or not _ami_is_deprecated(a)]
    if filters:
        images = generic_filter(filters, images)
    return images


def _describe_images_response(self):
    self.error_on_dryrun()
    images = self.ec2_backend.describe_images(
        ami_ids=self._get_param("ImageIds", []),
        filters=self._filters_from_querystring(),
        exec_users=self._get_param("ExecutableUsers", []),
        owners=self._get_param("Owners", []),
        include_deprecated=_bool(self._get_param("IncludeDeprecated", False)),
    )
    return ActionResult({"Images": images})


AmiBackend.describe_images = _describe_images
AmisResponse.describe_images = _describe_images_response

_moto_modify_image_attribute = AmiBackend.modify_image_attribute


def _modify_image_attribute(self, ami_id, launch_permissions_to_add, launch_permissions_to_remove):
    # GAP (made by our visibility fix): only the owner may change an image.
    _owned_image(self, ami_id)
    return _moto_modify_image_attribute(self, ami_id, launch_permissions_to_add, launch_permissions_to_remove)


def _describe_image_attribute(self, ami_id, attribute_name):
    # GAP: moto answers 500 (KeyError) for an unknown or another's image.
    return getattr(_owned_image(self, ami_id), attribute_name)


AmiBackend.modify_image_attribute = _modify_image_attribute
AmiBackend.describe_image_attribute = _describe_image_attribute


# --- Snapshots shared with createVolumePermission ---------------------------------
# GAP: a snapshot shared with another account is invisible and unusable there;
# DescribeSnapshots ignores OwnerIds and RestorableByUserIds.
# AWS (DescribeSnapshots, CreateVolume, CopySnapshot references): the account
# sees and can create volumes from / copy snapshots it owns, public ones and
# ones whose createVolumePermission names it.

_moto_get_snapshot = EBSBackend.get_snapshot


def _get_snapshot(self, snapshot_id):
    snap = self.snapshots.get(snapshot_id)
    if snap is None:
        snap = _shared_snapshot(self, snapshot_id)
    if snap is None:
        return _moto_get_snapshot(self, snapshot_id)  # raises NotFound
    return snap


EBSBackend.get_snapshot = _get_snapshot


def _own_snapshot(backend, snapshot_id):
    snap = backend.snapshots.get(snapshot_id)
    if snap is None:
        if _shared_snapshot(backend, snapshot_id) is not None:
            raise EC2ClientError("AuthFailure", f"Not authorized for snapshot:{snapshot_id}")
        raise InvalidSnapshotIdError()
    return snap


_moto_add_cvp = EBSBackend.add_create_volume_permission
_moto_remove_cvp = EBSBackend.remove_create_volume_permission


def _add_create_volume_permission(self, snapshot_id, user_ids, groups):
    snap = _own_snapshot(self, snapshot_id)
    # AWS: snapshots encrypted with the AWS managed key aws/ebs cannot be
    # shared ("Snapshots encrypted with the AWS Managed CMK can't be shared").
    if snap.encrypted and snap.kms_key_id and _is_aws_managed_ebs_key(self, snap.kms_key_id):
        raise EC2ClientError(
            "InvalidParameter", "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot."
        )
    return _moto_add_cvp(self, snapshot_id, user_ids, groups)


def _remove_create_volume_permission(self, snapshot_id, user_ids=None, groups=None):
    _own_snapshot(self, snapshot_id)
    return _moto_remove_cvp(self, snapshot_id, user_ids, groups)


def _is_aws_managed_ebs_key(backend, key_arn):
    from moto.kms.models import kms_backends

    try:
        kms = kms_backends[backend.account_id][backend.region_name]
        return kms.describe_key("alias/aws/ebs").arn == key_arn and kms.alias_exists("alias/aws/ebs")
    except Exception:
        return False


EBSBackend.add_create_volume_permission = _add_create_volume_permission
EBSBackend.remove_create_volume_permission = _remove_create_volume_permission


def _modify_snapshot_attribute_response(self):
    # GAP: moto reads only the OperationType + UserIds form; the
    # CreateVolumePermission.Add/Remove form (what aws-sdk-go-v2 sends) is
    # silently ignored. AWS: both forms add or remove createVolumePermission.
    snapshot_id = self._get_param("SnapshotId")
    self.error_on_dryrun()
    permission = self._get_param("CreateVolumePermission") or {}
    add = list(permission.get("Add") or [])
    remove = list(permission.get("Remove") or [])
    operation = self._get_param("OperationType")
    if operation in ("add", "remove"):
        plain = [{"UserId": u} for u in self._get_param("UserIds", [])]
        plain += [{"Group": g} for g in self._get_param("GroupNames", [])]
        (add if operation == "add" else remove).extend(plain)
    if not add and not remove:
        raise MissingParameterError("CreateVolumePermission")

    def split(perms):
        return [p["UserId"] for p in perms if p.get("UserId")], [p["Group"] for p in perms if p.get("Group")]

    if add:
        users, groups = split(add)
        self.ec2_backend.add_create_volume_permission(snapshot_id, user_ids=users, groups=groups)
    if remove:
        users, groups = split(remove)
        self.ec2_backend.remove_create_volume_permission(snapshot_id, user_ids=users, groups=groups)
    return EmptyResult()
ElasticBlockStore.modify_snapshot_attribute = _modify_snapshot_attribute_response


def _describe_snapshots(self, snapshot_ids=None, filters=None, owner_ids=None, restorable_by=None):
    me = self.account_id
    snaps = dict(self.snapshots)
    for account, other in _region_backends(self.region_name):
        if account == me:
            continue
        for snap in list(other.snapshots.values()):
            if "all" in snap.create_volume_permission_groups or me in snap.create_volume_permission_userids:
                snaps.setdefault(snap.id, snap)
    if snapshot_ids:
        missing = [i for i in snapshot_ids if i not in snaps]
        if missing:
            raise EC2ClientError("InvalidSnapshot.NotFound", f"The snapshot '{missing[0]}' does not exist.")
        matches = [snaps[i] for i in snapshot_ids]
    else:
        matches = list(snaps.values())
    if owner_ids:
        wanted = {me if o == "self" else o for o in owner_ids}
        matches = [s for s in matches if s.owner_id in wanted]
    if restorable_by:
        users = {me if u == "self" else u for u in restorable_by}
        matches = [
            s
            for s in matches
            if "all" in users and "all" in s.create_volume_permission_groups
            or users & (set(s.create_volume_permission_userids) | ({s.owner_id} & {me}))
        ]
    if filters:
        matches = generic_filter(filters, matches)
    return matches


def _describe_snapshots_response(self):
    snapshots = self.ec2_backend.describe_snapshots(
        snapshot_ids=self._get_param("SnapshotIds", []),
        filters=self._filters_from_querystring(),
        owner_ids=self._get_param("OwnerIds", []),
        restorable_by=self._get_param("RestorableByUserIds", []),
    )
    return ActionResult({"Snapshots": snapshots})


EBSBackend.describe_snapshots = _describe_snapshots
ElasticBlockStore.describe_snapshots = _describe_snapshots_response


# --- Encryption by default, CreateSnapshot/CopySnapshot pending ---------------------
# GAP: EnableEbsEncryptionByDefault is stored, not enforced; CopySnapshot
# ignores Encrypted and copies only the caller's own snapshots.
# AWS ("Encryption by default"): with it on, new volumes and snapshot copies
# are encrypted with the account's default EBS key.

_moto_create_volume = EBSBackend.create_volume


def _create_volume(self, size, zone_name, snapshot_id=None, encrypted=False, kms_key_id=None, **kwargs):
    if getattr(self, "ebs_encryption_by_default", False) and not encrypted:
        encrypted = True
    if snapshot_id and not kms_key_id:
        snap = self.get_snapshot(snapshot_id)
        if snap.encrypted or encrypted:
            encrypted = True
            # AWS: a volume from an encrypted snapshot keeps its key unless
            # another is given; the snapshot's key must be usable here.
            kms_key_id = snap.kms_key_id if snap.encrypted and snap.owner_id == self.account_id else None
    volume = _moto_create_volume(self, size, zone_name, snapshot_id, encrypted, kms_key_id, **kwargs)
    return volume


EBSBackend.create_volume = _create_volume

_moto_create_snapshot = EBSBackend.create_snapshot


def _create_snapshot(self, volume_id, description, owner_id=None, from_ami=None):
    snap = _moto_create_snapshot(self, volume_id, description, owner_id, from_ami)
    snap.kms_key_id = snap.volume.kms_key_id if snap.encrypted else None
    if from_ami is None:  # not the fake snapshot of moto's own AMIs
        _make_pending(snap, "snapshot")
    return snap


EBSBackend.create_snapshot = _create_snapshot


def _copy_snapshot(self, source_snapshot_id, source_region, description, kms_key_id, encrypted=False):
    source_backend = ec2_backends[self.account_id][source_region or self.region_name]
    source = source_backend.get_snapshot(source_snapshot_id)
    is_encrypted, key = _encryption(self, source.encrypted, encrypted, kms_key_id)
    snap = Snapshot(
        self,
        random_snapshot_id(),
        volume=source.volume,
        description=description or "",
        encrypted=is_encrypted,
        kms_key_id=key,
    )
    _make_pending(snap, "snapshotCopy")
    self.snapshots[snap.id] = snap
    return snap


def _copy_snapshot_response(self):
    tags = self._parse_tag_specification().get("snapshot", {})
    self.error_on_dryrun()
    snapshot = self.ec2_backend.copy_snapshot(
        source_snapshot_id=self._get_param("SourceSnapshotId"),
        source_region=self._get_param("SourceRegion"),
        description=self._get_param("Description"),
        kms_key_id=self._get_param("KmsKeyId"),
        encrypted=_bool(self._get_param("Encrypted", False)),
    )
    snapshot.add_tags(tags)
    return ActionResult({"SnapshotId": snapshot.id, "Tags": snapshot.tag_set})


EBSBackend.copy_snapshot = _copy_snapshot
ElasticBlockStore.copy_snapshot = _copy_snapshot_response


# GAP: GetEbsDefaultKmsKeyId and ResetEbsDefaultKmsKeyId answer 500.
# AWS: they answer the key new encrypted volumes get by default (the aws/ebs
# key until ModifyEbsDefaultKmsKeyId changes it).
def _get_ebs_default_kms_key_id(self):
    self.error_on_dryrun()
    return ActionResult({"KmsKeyId": _default_kms_key_arn(self.ec2_backend)})


def _reset_ebs_default_kms_key_id(self):
    self.error_on_dryrun()
    backend = self.ec2_backend
    backend.default_kms_key_id = ""
    return ActionResult({"KmsKeyId": _default_kms_key_arn(backend)})


Settings.get_ebs_default_kms_key_id = _get_ebs_default_kms_key_id
Settings.reset_ebs_default_kms_key_id = _reset_ebs_default_kms_key_id


# --- CopyImage -------------------------------------------------------------------
# GAP: moto's CopyImage ignores Encrypted, KmsKeyId, CopyImageTags and
# TagSpecifications, copies only the caller's own images, keeps none of the
# image attributes and makes no snapshot copies.
# AWS (CopyImage reference, CopyingAMIs.html): the source may be any image the
# caller can launch (shared or public) in the source region; Name is
# required; every EBS snapshot is copied into the caller's account
# (encrypted per Encrypted/KmsKeyId/encryption by default); architecture,
# virtualization, ENA, SR-IOV, boot mode, TPM and IMDS settings are copied;
# launch permissions, deprecation and (unless CopyImageTags) tags are not.


def _copy_image(self, source_image_id, source_region, name=None, description=None, **options):
    source_backend = ec2_backends[self.account_id][source_region or self.region_name]
    source = _visible_images(source_backend).get(source_image_id)
    if source is None:
        raise InvalidAMIIdError(source_image_id)
    if source.state != "available":
        raise EC2ClientError("IncorrectState", f"Image {source_image_id} is not available (it is {source.state})")
    _check_new_image_name(self, name)
    encrypted_flag = options.get("encrypted", False)
    kms_key_id = options.get("kms_key_id")
    if kms_key_id and not encrypted_flag:
        raise InvalidParameterDependency("KmsKeyId", "Encrypted")

    ami_id = random_ami_id()
    ami = Ami(self, ami_id, source_ami=source, name=name, description=description or source.description,
              region_name=f"{self.region_name}a")
    _drop_auto_snapshot(self, ami)
    owner_backend = source.ec2_backend
    mappings = []
    for mapping in source.block_device_mappings:
        mapping = copy.deepcopy(mapping)
        ebs = mapping.get("Ebs")
        if ebs and ebs.get("SnapshotId"):
            src_snap = owner_backend.snapshots.get(ebs["SnapshotId"])
            if src_snap is None:
                raise InvalidSnapshotIdError()
            is_encrypted, key = _encryption(self, src_snap.encrypted, encrypted_flag, kms_key_id)
            snap = Snapshot(
                self,
                random_snapshot_id(),
                volume=src_snap.volume,
                description=f"Copied for DestinationAmi {ami_id} from SourceAmi {source.id} "
                f"for SourceSnapshot {src_snap.id}",
                encrypted=is_encrypted,
                kms_key_id=key,
            )
            _make_pending(snap, "imageCopy")
            self.snapshots[snap.id] = snap
            ebs["SnapshotId"] = snap.id
            ebs["Encrypted"] = is_encrypted
        mappings.append(mapping)
    ami.__dict__["_autoami_bdm"] = mappings
    for attr in ("root_device_name", "root_device_type", "sriov", "boot_mode", "hypervisor",
                 "ena_support", "tpm_support", "imds_support", "uefi_data"):
        setattr(ami, attr, getattr(source, attr))
    ami.image_location = f"{self.account_id}/{name}"
    ami.source_image_id = source.id
    ami.source_image_region = source_backend.region_name
    if options.get("copy_image_tags"):
        ami.add_tags({t["key"]: t["value"] for t in source.get_tags()})
    ami.add_tags(options.get("tags") or {})
    _make_pending(ami, "imageCopy")
    self.amis[ami_id] = ami
    return ami


def _copy_image_response(self):
    tags = self._parse_tag_specification()
    self.error_on_dryrun()
    image = self.ec2_backend.copy_image(
        self._get_param("SourceImageId"),
        self._get_param("SourceRegion"),
        self._get_param("Name"),
        self._get_param("Description"),
        encrypted=_bool(self._get_param("Encrypted", False)),
        kms_key_id=self._get_param("KmsKeyId"),
        copy_image_tags=_bool(self._get_param("CopyImageTags", False)),
        tags=tags.get("image", {}),
    )
    return ActionResult({"ImageId": image.id})


AmiBackend.copy_image = _copy_image
AmisResponse.copy_image = _copy_image_response


# --- EBS direct APIs: in autoami_blocks.py (on the snapshots' files) ----------------


# --- Main ---------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--pending", default="{}", help='JSON {"image": s, "imageCopy": s, ...}')
    parser.add_argument("--data-dir", required=True, help="directory for volumes, snapshots and instance roots")
    parser.add_argument("--boot-disk", default="", help="bootable raw disk for seeded images' root snapshots")
    args = parser.parse_args(argv)

    global HARNESS, DATA_DIR, BOOT_DISK
    HARNESS = Harness(json.loads(args.pending))
    DATA_DIR = args.data_dir
    BOOT_DISK = args.boot_disk or None

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    try:
        run_simple(args.host, args.port, HarnessApp(app), threaded=True)
    finally:
        for hook in STOP_HOOKS:
            hook()


for _name in EXTENSIONS:
    __import__(_name)


if __name__ == "__main__":
    main()
