"""Fidelity fixes the publication probe found missing, and the inventory.

An extension of autoami_moto (see its docstring): imported by it after its
own patches, it patches moto's EC2 and SSM models a little further. Every
addition names the moto gap it fills ("GAP:") and the AWS behaviour it follows
("AWS:"), and adds one line to ADDITIONS.

Filled here:
  - DeregisterImage DeleteAssociatedSnapshots (DeleteSnapshotResults);
    deregistration protection (Enable/DisableImageDeregistrationProtection,
    WithCooldown, DescribeImages/DescribeImageAttribute
    DeregistrationProtection); DisableImage / EnableImage, IncludeDisabled.
  - SSM aws:ec2:image parameters: a value that is not an AMI the account sees
    in that region is not written (PutParameter still answers 200 with the
    version); an overwrite without DataType keeps the parameter's data type.
  - MaxResults / NextToken for DescribeImages, DescribeSnapshots,
    DescribeVolumes and DescribeInstances.
  - Organisation and OU launch permissions: malformed ARNs refused; images
    shared with an organisation or OU are visible to its member accounts, as
    told by the control route below.
  - The inventory: every instance, volume, snapshot, image and SSM parameter a
    test or the provider made, per account and region.

Resources the world starts with are never in the inventory: moto's built-in
AMIs and their snapshots, SSM's public /aws/ parameters, and anything another
extension marks by setting resource.__dict__["_autoami_default"] = True
(mark_default below), such as seeded vendor images.

Control routes (JSON; POST /moto-api/reset clears them):
  POST /autoami-harness/organizations   {"organizations": [{"arn":
        "arn:aws:organizations::<management account>:organization/o-...",
        "accounts": [...], "ous": [{"arn": "arn:aws:organizations::<management
        account>:ou/o-.../ou-...", "accounts": [...]}]}]}  replaces the
        membership; the management account belongs to its organisation
  GET  /autoami-harness/organizations   the membership in force
  POST /autoami-harness/deregistration-cooldown  {"seconds": n}  how long
        deregistration protection enabled WithCooldown lasts after it is
        disabled (AWS: 24 hours; applies also to cooldowns already running)
  GET  /autoami-harness/inventory       {"targets": [{"account", "region",
        "instances", "volumes", "snapshots", "images", "parameters"}]}
"""

import base64
import datetime
import json
import re
import threading

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidAMIAttributeItemValueError,
    InvalidParameterCombination,
    InvalidSnapshotInUse,
)
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.instances import InstanceResponse
from moto.ssm.exceptions import ValidationException
from moto.ssm.models import ParameterDict, ssm_backends
from moto.ssm.responses import SimpleSystemManagerResponse

import autoami_moto as core

# Harness knobs of this module; reset() restores them.
_LOCK = threading.Lock()
_DAY = 86400.0
_STATE = {"cooldown_seconds": _DAY, "organizations": [], "account_org": {}, "account_ous": {}}


def _reset():
    with _LOCK:
        _STATE["cooldown_seconds"] = _DAY
        _STATE["organizations"] = []
        _STATE["account_org"] = {}
        _STATE["account_ous"] = {}


def mark_default(resource):
    """Marks a resource the world starts with: the inventory leaves it out."""
    resource.__dict__["_autoami_default"] = True


def _is_default(resource):
    return bool(resource.__dict__.get("_autoami_default"))


# GAP (inventory): nothing tells a built-in AMI from one a test registered.
# Every AMI moto loads at backend creation is marked, with the snapshot moto
# makes for it.
_moto_load_amis = AmiBackend._load_amis


def _load_amis(self):
    _moto_load_amis(self)
    for ami in list(self.amis.values()):
        mark_default(ami)
        auto = getattr(ami, "ebs_snapshot", None)
        if auto is not None:
            mark_default(auto)


AmiBackend._load_amis = _load_amis


def _bool(value):
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


# --- Deregistration protection ------------------------------------------------
# GAP: Enable/DisableImageDeregistrationProtection answer 500; DeregisterImage
# ignores protection; DescribeImages has no DeregistrationProtection.
# AWS (EnableImageDeregistrationProtection / DisableImageDeregistrationProtection
# references, ami-deregistration-protection.html): a protected image cannot be
# deregistered; WithCooldown keeps it protected for 24 hours after protection
# is disabled; only the owner changes it. DescribeImages says "disabled",
# "enabled-without-cooldown" or "enabled-with-cooldown" (the Return of
# EnableImageDeregistrationProtection in the CLI reference's example), and
# during a cooldown "disabled after <time>" (the form aws-nuke parses; the
# time's format is the harness's guess). The error code of a refused
# DeregisterImage is not documented: OperationNotPermitted, as for a
# terminate refused by termination protection, is the harness's guess.


def _protection(ami):
    return ami.__dict__.setdefault("_autoami_protection", {"enabled": False, "cooldown": False, "disabled_at": None})


def _cooldown_ends(state):
    """Naive UTC end of a running cooldown, or None."""
    if state["enabled"] or state["disabled_at"] is None:
        return None
    ends = state["disabled_at"] + datetime.timedelta(seconds=_STATE["cooldown_seconds"])
    return ends if ends > utcnow() else None


def _protection_text(ami):
    state = ami.__dict__.get("_autoami_protection")
    if state is None:
        return "disabled"
    if state["enabled"]:
        return "enabled-with-cooldown" if state["cooldown"] else "enabled-without-cooldown"
    ends = _cooldown_ends(state)
    return f"disabled after {core._iso(ends)}" if ends else "disabled"


Ami.deregistration_protection = property(_protection_text)


def _enable_deregistration_protection(self):
    self.error_on_dryrun()
    ami = core._owned_image(self.ec2_backend, self._get_param("ImageId"))
    state = _protection(ami)
    state.update(enabled=True, cooldown=_bool(self._get_param("WithCooldown", False)), disabled_at=None)
    return ActionResult({"Return": _protection_text(ami)})


def _disable_deregistration_protection(self):
    self.error_on_dryrun()
    ami = core._owned_image(self.ec2_backend, self._get_param("ImageId"))
    state = _protection(ami)
    if state["enabled"]:
        state.update(enabled=False, disabled_at=utcnow() if state["cooldown"] else None)
    return ActionResult({"Return": _protection_text(ami)})


AmisResponse.enable_image_deregistration_protection = _enable_deregistration_protection
AmisResponse.disable_image_deregistration_protection = _disable_deregistration_protection

_moto_deregister_image = AmiBackend.deregister_image


def _deregister_image(self, ami_id):
    ami = self.amis.get(ami_id)
    if ami is not None:
        state = ami.__dict__.get("_autoami_protection")
        if state is not None and (state["enabled"] or _cooldown_ends(state)):
            raise EC2ClientError(
                "OperationNotPermitted",
                f"The image {ami_id} cannot be deregistered: deregistration protection is "
                f"{_protection_text(ami)}. Disable it first (DisableImageDeregistrationProtection).",
            )
    return _moto_deregister_image(self, ami_id)


AmiBackend.deregister_image = _deregister_image

_moto_describe_image_attribute_response = AmisResponse.describe_image_attribute


def _describe_image_attribute_response(self):
    # GAP: DescribeImageAttribute deregistrationProtection answers InvalidRequest.
    # AWS: it is one of the attribute names; the value is the DescribeImages text.
    if self._get_param("Attribute") != "deregistrationProtection":
        return _moto_describe_image_attribute_response(self)
    ami = core._owned_image(self.ec2_backend, self._get_param("ImageId"))
    return ActionResult({"ImageId": ami.id, "DeregistrationProtection": {"Value": _protection_text(ami)}})


AmisResponse.describe_image_attribute = _describe_image_attribute_response


# --- DeregisterImage DeleteAssociatedSnapshots --------------------------------
# GAP: DeleteAssociatedSnapshots is ignored, so the image's snapshots leak.
# AWS (DeregisterImage reference): with DeleteAssociatedSnapshots=true the
# image's EBS snapshots are deleted with it, except a snapshot another image
# also uses (left alone); DeleteSnapshotResults gives each snapshot's
# ReturnCode (success, skipped, client-error, ...). Deletion goes through the
# backend's delete_snapshot, so the hooks other modules put there run.


def _image_snapshot_ids(ami):
    ids = []
    for mapping in ami.block_device_mappings:
        snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
        if snapshot_id and snapshot_id not in ids:
            ids.append(snapshot_id)
    return ids


def _deregister_image_response(self):
    ami_id = self._get_param("ImageId")
    delete_snapshots = _bool(self._get_param("DeleteAssociatedSnapshots", False))
    self.error_on_dryrun()
    backend = self.ec2_backend
    ami = backend.amis.get(ami_id)
    snapshot_ids = _image_snapshot_ids(ami) if ami is not None and delete_snapshots else []
    backend.deregister_image(ami_id)
    result = {"Return": True}
    if delete_snapshots:
        outcomes = []
        for snapshot_id in snapshot_ids:
            try:
                backend.delete_snapshot(snapshot_id)
                code = "success"
            except InvalidSnapshotInUse:
                code = "skipped"  # another image uses it
            except EC2ClientError:
                code = "client-error"
            outcomes.append({"SnapshotId": snapshot_id, "ReturnCode": code})
        result["DeleteSnapshotResults"] = outcomes
    return ActionResult(result)


AmisResponse.deregister_image = _deregister_image_response


# --- DisableImage / EnableImage -------------------------------------------------
# GAP: DisableImage and EnableImage answer 500; IncludeDisabled is ignored.
# AWS (DisableImage, EnableImage, DescribeImages references; disable-an-ami.html):
# only the owner disables or re-enables; a disabled image is in state
# "disabled", loses every launch permission (public, accounts, organisations,
# OUs) and cannot be shared or launched; DescribeImages leaves it out unless
# IncludeDisabled=true; EnableImage makes it "available" without restoring the
# permissions. Codes the references do not name are the harness's guesses:
# OperationNotPermitted for sharing a disabled image, InvalidAMIID.Unavailable
# for launching one.


def _disable_image(self):
    self.error_on_dryrun()
    ami = core._owned_image(self.ec2_backend, self._get_param("ImageId"))
    if ami.state not in ("available", "disabled"):
        raise EC2ClientError("IncorrectState", f"Image {ami.id} is {ami.state}; only an available image can be disabled")
    ami.state = "disabled"
    del ami.launch_permissions[:]
    return ActionResult({"Return": True})


def _enable_image(self):
    self.error_on_dryrun()
    ami = core._owned_image(self.ec2_backend, self._get_param("ImageId"))
    if ami.state == "disabled":
        ami.state = "available"
    return ActionResult({"Return": True})


AmisResponse.disable_image = _disable_image
AmisResponse.enable_image = _enable_image

_moto_run_instances = InstanceBackend.run_instances


def _run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
    ami = self.amis.get(image_id) if image_id else None
    if ami is not None and ami.state == "disabled":
        raise EC2ClientError("InvalidAMIID.Unavailable", f"The image id '[{image_id}]' is disabled and cannot be launched")
    return _moto_run_instances(self, image_id, count, user_data, security_group_names, **kwargs)


InstanceBackend.run_instances = _run_instances


# --- Organisation and OU launch permissions ----------------------------------
# GAP: OrganizationArn / OrganizationalUnitArn launch permissions are stored
# but grant nothing, and malformed ARNs are accepted.
# AWS (share-amis-with-organizations-and-OUs.html, ModifyImageAttribute): an
# image shared with an organisation or OU can be described, launched and
# copied by every account in it (an OU: also its accounts only); a malformed
# ARN is InvalidAMIAttributeItemValue ('Invalid attribute item value "..." for
# OrganizationArn item type.'). Which accounts are in which organisation and
# OU is told to the harness (POST /autoami-harness/organizations); OUs are
# flat (no nested OUs).

_PARTITION = r"arn:aws(?:-cn|-us-gov)?"
_ORG_ID = r"o-[a-z0-9]{10,32}"
_ORG_ARN = re.compile(rf"^{_PARTITION}:organizations::(\d{{12}}):organization/({_ORG_ID})$")
_OU_ARN = re.compile(rf"^{_PARTITION}:organizations::(\d{{12}}):ou/({_ORG_ID})/ou-[0-9a-z]{{4,32}}-[a-z0-9]{{8,32}}$")
_ACCOUNT = re.compile(r"^\d{12}$")


def _check_permission_arns(permissions):
    for perm in permissions:
        if "OrganizationArn" in perm and not _ORG_ARN.match(perm["OrganizationArn"] or ""):
            raise InvalidAMIAttributeItemValueError("OrganizationArn", perm["OrganizationArn"])
        if "OrganizationalUnitArn" in perm and not _OU_ARN.match(perm["OrganizationalUnitArn"] or ""):
            raise InvalidAMIAttributeItemValueError("OrganizationalUnitArn", perm["OrganizationalUnitArn"])


_moto_modify_image_attribute = AmiBackend.modify_image_attribute


def _modify_image_attribute(self, ami_id, launch_permissions_to_add, launch_permissions_to_remove):
    _check_permission_arns(launch_permissions_to_add)
    _check_permission_arns(launch_permissions_to_remove)
    ami = self.amis.get(ami_id)
    if ami is not None and launch_permissions_to_add and ami.state == "disabled":
        raise EC2ClientError("OperationNotPermitted", f"The image {ami_id} is disabled and cannot be shared")
    return _moto_modify_image_attribute(self, ami_id, launch_permissions_to_add, launch_permissions_to_remove)


AmiBackend.modify_image_attribute = _modify_image_attribute


def _granted_by_organization(ami, account):
    """Whether an organisation or OU launch permission of ami covers account."""
    with _LOCK:
        org = _STATE["account_org"].get(account)
        ous = _STATE["account_ous"].get(account, set())
    for perm in ami.launch_permissions:
        if org is not None and perm.get("OrganizationArn") == org:
            return True
        if perm.get("OrganizationalUnitArn") in ous:
            return True
    return False


_core_launchable_by = core._launchable_by


def _launchable_by(ami, account):
    return _core_launchable_by(ami, account) or _granted_by_organization(ami, account)


# The core's visibility (DescribeImages, CopyImage, RunInstances' image
# lookup) calls core._launchable_by by name.
core._launchable_by = _launchable_by

_core_describe_images = AmiBackend.describe_images


def _describe_images(self, ami_ids=None, filters=None, exec_users=None, owners=None, include_deprecated=False):
    # ExecutableUsers counts organisation and OU grants as explicit ones.
    if not exec_users or ami_ids:
        return _core_describe_images(self, ami_ids=ami_ids, filters=filters, exec_users=exec_users, owners=owners,
                                     include_deprecated=include_deprecated)
    images = _core_describe_images(self, ami_ids=None, filters=filters, exec_users=None, owners=owners,
                                   include_deprecated=include_deprecated)
    users = {self.account_id if u == "self" else u for u in exec_users}

    def executable(ami):
        if "all" in users and ami.is_public:
            return True
        return any({"UserId": u} in ami.launch_permissions or _granted_by_organization(ami, u)
                   for u in users if u != "all")

    return [ami for ami in images if executable(ami)]


AmiBackend.describe_images = _describe_images


def _set_organizations(environ):
    body = core.HarnessApp._json_body(environ)
    unknown = set(body) - {"organizations"}
    if unknown:
        raise ValueError(f"organizations: unknown fields {sorted(unknown)}")
    orgs = body.get("organizations")
    if not isinstance(orgs, list):
        raise ValueError("organizations: want a list of organisations")
    account_org, account_ous, clean = {}, {}, []

    def accounts_of(where, entry):
        accounts = entry.get("accounts", [])
        if not isinstance(accounts, list):
            raise ValueError(f"{where}.accounts: want a list of 12-digit account IDs")
        for account in accounts:
            if not isinstance(account, str) or not _ACCOUNT.match(account):
                raise ValueError(f"{where}.accounts: {account!r} is not a 12-digit account ID")
        return list(accounts)

    def join(where, account, org_arn):
        if account_org.get(account, org_arn) != org_arn:
            raise ValueError(f"{where}: account {account} is already in {account_org[account]}")
        account_org[account] = org_arn

    for i, org in enumerate(orgs):
        where = f"organizations[{i}]"
        if not isinstance(org, dict):
            raise ValueError(f"{where}: want an object")
        unknown = set(org) - {"arn", "accounts", "ous"}
        if unknown:
            raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
        match = _ORG_ARN.match(org.get("arn") or "")
        if not match:
            raise ValueError(f"{where}.arn: {org.get('arn')!r} is not an organization ARN "
                             "(arn:aws:organizations::<12-digit management account>:organization/o-<10-32 of a-z0-9>)")
        org_arn, management, org_id = org["arn"], match.group(1), match.group(2)
        members = accounts_of(where, org)
        for account in [management] + members:
            join(where, account, org_arn)
        ous = []
        for j, ou in enumerate(org.get("ous", [])):
            ou_where = f"{where}.ous[{j}]"
            if not isinstance(ou, dict):
                raise ValueError(f"{ou_where}: want an object")
            unknown = set(ou) - {"arn", "accounts"}
            if unknown:
                raise ValueError(f"{ou_where}: unknown fields {sorted(unknown)}")
            ou_match = _OU_ARN.match(ou.get("arn") or "")
            if not ou_match:
                raise ValueError(f"{ou_where}.arn: {ou.get('arn')!r} is not an OU ARN "
                                 "(arn:aws:organizations::<management account>:ou/o-.../ou-<4-32>-<8-32>)")
            if (ou_match.group(1), ou_match.group(2)) != (management, org_id):
                raise ValueError(f"{ou_where}.arn: {ou['arn']} is not an OU of {org_arn}")
            ou_accounts = accounts_of(ou_where, ou)
            for account in ou_accounts:
                join(ou_where, account, org_arn)
                account_ous.setdefault(account, set()).add(ou["arn"])
            ous.append({"arn": ou["arn"], "accounts": ou_accounts})
        clean.append({"arn": org_arn, "accounts": members, "ous": ous})
    with _LOCK:
        _STATE["organizations"] = clean
        _STATE["account_org"] = account_org
        _STATE["account_ous"] = account_ous
    return "200 OK", {"organizations": clean}


def _get_organizations(environ):
    with _LOCK:
        return "200 OK", {"organizations": _STATE["organizations"]}


def _set_cooldown(environ):
    body = core.HarnessApp._json_body(environ)
    seconds = body.get("seconds")
    if set(body) != {"seconds"} or not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError(f'deregistration-cooldown: want {{"seconds": n >= 0}}, got {body!r}')
    with _LOCK:
        _STATE["cooldown_seconds"] = float(seconds)
    return "200 OK", {"seconds": _STATE["cooldown_seconds"]}


# --- SSM aws:ec2:image parameters ---------------------------------------------
# GAP: moto writes any value of a parameter with DataType aws:ec2:image, and an
# overwrite without DataType turns the parameter's data type to text.
# AWS (PutParameter reference, parameter-store-data-types.html,
# parameter-store-ec2-aliases.html): the value of an aws:ec2:image parameter
# (format and existence: an AMI the account can use in that region) is
# validated asynchronously; PutParameter answers 200 with a version either
# way, but an invalid value is not written: a new parameter is not created
# (GetParameter: ParameterNotFound), an existing one keeps its version. A
# parameter cannot change to or from aws:ec2:image (refused at once; the error
# code, ValidationException, is the harness's guess), and an overwrite
# without DataType keeps the data type. Visible here means what DescribeImages
# by ID shows the account in that region (own, shared, public; not disabled).


def _ami_visible(account, region, value):
    if not isinstance(value, str) or not value.startswith("ami-"):
        return False
    backend = ec2_backends[account][region]
    ami = core._visible_images(backend).get(value)
    return ami is not None and ami.state != "disabled"


def _latest_parameter(backend, name):
    versions = dict.get(backend._parameters, ParameterDict.normalize_name(name)) if name else None
    return versions[-1] if versions else None


def _drop_written_version(backend, name, created):
    key = ParameterDict.normalize_name(name)
    versions = dict.get(backend._parameters, key)
    if versions:
        versions.pop()
    if created:
        dict.pop(backend._parameters, key, None)
        tags = backend._resource_tags.get("Parameter")
        if tags is not None:
            tags.pop(key, None)
            tags.pop(name, None)


_moto_put_parameter_response = SimpleSystemManagerResponse.put_parameter


def _put_parameter_response(self):
    try:
        body = json.loads(self.body or "{}")
    except ValueError:
        return _moto_put_parameter_response(self)
    name = body.get("Name")
    backend = self.ssm_backend
    existing = _latest_parameter(backend, name)
    overwrite = bool(body.get("Overwrite"))
    requested = body.get("DataType")
    data_type = requested if requested is not None else (existing.data_type if existing and overwrite else "text")
    if existing is not None and overwrite and data_type != existing.data_type \
            and "aws:ec2:image" in (data_type, existing.data_type):
        raise ValidationException(
            f"Parameter {name} has data type {existing.data_type}; a parameter cannot change to or from "
            "data type aws:ec2:image"
        )
    if data_type == "aws:ec2:image" and body.get("Type") not in (None, "String"):
        raise ValidationException(f"Data type aws:ec2:image supports only parameters of type String, not {body['Type']}")
    body["DataType"] = data_type
    self.body = json.dumps(body)
    result = _moto_put_parameter_response(self)
    if data_type == "aws:ec2:image" and not _ami_visible(self.current_account, self.region, body.get("Value")):
        _drop_written_version(backend, name, created=existing is None)
    return result


SimpleSystemManagerResponse.put_parameter = _put_parameter_response


# --- Pagination -------------------------------------------------------------------
# GAP: DescribeImages, DescribeSnapshots and DescribeVolumes ignore MaxResults
# and NextToken (everything in one page, so paginator code never runs);
# DescribeInstances pages 100 reservations by default and checks no range.
# AWS (API reference, older parameter texts): DescribeSnapshots MaxResults
# 5..1000 (larger: 1000), DescribeVolumes 5..500 (larger: 500),
# DescribeInstances 5..1000; none of them with explicit IDs
# (InvalidParameterCombination); below 5 is InvalidParameterValue; a bad
# NextToken is InvalidPaginationToken; without MaxResults everything comes
# back. DescribeImages' range (5..1000, larger refused) and its refusal with
# ImageIds are the harness's guesses, as is refusing DescribeInstances above
# 1000. Pages follow ID order (DescribeInstances: reservation ID order), so
# a resource made or deleted between pages shifts nothing.

# operation -> (minimum, maximum, larger values cut to the maximum?, IDs parameter, its wire name)
_PAGE_LIMITS = {
    "DescribeImages": (5, 1000, False, "ImageIds", "imagesSet"),
    "DescribeSnapshots": (5, 1000, True, "SnapshotIds", "snapshotSet"),
    "DescribeVolumes": (5, 500, True, "VolumeIds", "volumeSet"),
    "DescribeInstances": (5, 1000, False, "InstanceIds", "instancesSet"),
}


def _token(operation, last_id):
    return base64.urlsafe_b64encode(f"{operation}:{last_id}".encode()).decode().rstrip("=")


def _untoken(operation, token):
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    op, _, last_id = text.partition(":")
    if op != operation or not last_id:
        raise EC2ClientError("InvalidPaginationToken", f"The pagination token '{token}' is not valid or is expired")
    return last_id


def _page_request(resp, operation):
    """(limit or None, ID after which to start or None), checked as AWS does."""
    lo, hi, cut, ids_param, ids_name = _PAGE_LIMITS[operation]
    raw, token = resp._get_param("MaxResults"), resp._get_param("NextToken")
    limit = None
    if raw is not None:
        if resp._get_param(ids_param):
            raise InvalidParameterCombination(f"The parameter {ids_name} cannot be used with the parameter maxResults")
        try:
            limit = int(raw)
        except (TypeError, ValueError) as exc:
            raise EC2ClientError("InvalidParameterValue", f"Value ( {raw} ) for parameter maxResults is invalid.") from exc
        if limit < lo:
            raise EC2ClientError("InvalidParameterValue",
                                 f"Value ( {limit} ) for parameter maxResults is invalid. Expecting a value greater than {lo}.")
        if limit > hi:
            if not cut:
                raise EC2ClientError("InvalidParameterValue",
                                     f"Value ( {limit} ) for parameter maxResults is invalid. "
                                     f"Expecting a value less than or equal to {hi}.")
            limit = hi
    after = _untoken(operation, token) if token else None
    return limit, after


def _page(operation, key, result, limit, after):
    body = dict(result.result)
    items = sorted(body.get(key) or [], key=lambda item: item.id)
    if after is not None:
        items = [item for item in items if item.id > after]
    next_token = None
    if limit is not None and len(items) > limit:
        items = items[:limit]
        next_token = _token(operation, items[-1].id)
    body[key] = items
    body.pop("NextToken", None)
    if next_token:
        body["NextToken"] = next_token
    return ActionResult(body)


_core_describe_images_response = AmisResponse.describe_images


def _describe_images_response(self):
    limit, after = _page_request(self, "DescribeImages")
    result = _core_describe_images_response(self)
    if not _bool(self._get_param("IncludeDisabled", False)):
        body = dict(result.result)
        body["Images"] = [ami for ami in body.get("Images") or [] if ami.state != "disabled"]
        result = ActionResult(body)
    return _page("DescribeImages", "Images", result, limit, after)


AmisResponse.describe_images = _describe_images_response

_core_describe_snapshots_response = ElasticBlockStore.describe_snapshots


def _describe_snapshots_response(self):
    limit, after = _page_request(self, "DescribeSnapshots")
    return _page("DescribeSnapshots", "Snapshots", _core_describe_snapshots_response(self), limit, after)


ElasticBlockStore.describe_snapshots = _describe_snapshots_response

_core_describe_volumes_response = ElasticBlockStore.describe_volumes


def _describe_volumes_response(self):
    limit, after = _page_request(self, "DescribeVolumes")
    return _page("DescribeVolumes", "Volumes", _core_describe_volumes_response(self), limit, after)


ElasticBlockStore.describe_volumes = _describe_volumes_response

_core_describe_instances_response = InstanceResponse.describe_instances


def _describe_instances_response(self):
    limit, after = _page_request(self, "DescribeInstances")
    # moto pages by itself (100 reservations unless told); ask it for all.
    params = self.params if isinstance(getattr(self, "params", None), dict) else None
    if params is not None:
        params.pop("NextToken", None)
        params["MaxResults"] = 1 << 30
    return _page("DescribeInstances", "Reservations", _core_describe_instances_response(self), limit, after)


InstanceResponse.describe_instances = _describe_instances_response


# --- Inventory ----------------------------------------------------------------------
# GAP: nothing lists what a test left behind across accounts and regions.
# Harness only: GET /autoami-harness/inventory lists, per account and region,
# the instances, volumes, snapshots, images and SSM parameters a test or the
# provider made (not what the world starts with: see the module docstring).


def _created_backends(backends):
    """(account, region, backend) for every backend moto has created."""
    for account in sorted(dict.keys(backends)):
        per_region = dict.get(backends, account)
        for region in sorted(dict.keys(per_region)):
            yield account, region, dict.get(per_region, region)


def _ec2_tags(backend, resource_id):
    return dict(backend.tags.get(resource_id, {}))


def _ec2_inventory(backend):
    instances = []
    for reservation in list(backend.reservations.values()):
        for instance in list(reservation.instances):
            if _is_default(instance):
                continue
            instances.append({"id": instance.id, "state": instance.state,
                              "tags": _ec2_tags(backend, instance.id)})
    volumes = []
    for volume in list(backend.volumes.values()):
        if _is_default(volume):
            continue
        attachments = []
        attachment = getattr(volume, "attachment", None)
        if attachment is not None:
            attachments.append({"instanceId": attachment.instance.id, "device": attachment.device,
                                "state": attachment.status})
        volumes.append({"id": volume.id, "state": volume.status, "sizeGiB": int(volume.size),
                        "attachments": attachments, "tags": _ec2_tags(backend, volume.id)})
    snapshots = []
    for snap in list(backend.snapshots.values()):
        if _is_default(snap):
            continue
        volume = getattr(snap, "volume", None)
        snapshots.append({"id": snap.id, "state": snap.status, "volumeId": volume.id if volume is not None else "",
                          "tags": _ec2_tags(backend, snap.id)})
    images = []
    for ami in list(backend.amis.values()):
        if _is_default(ami) or ami.owner_id != backend.account_id:
            continue
        images.append({"id": ami.id, "name": ami.name or "", "state": ami.state,
                       "snapshotIds": _image_snapshot_ids(ami), "tags": _ec2_tags(backend, ami.id)})
    return {"instances": sorted(instances, key=lambda r: r["id"]),
            "volumes": sorted(volumes, key=lambda r: r["id"]),
            "snapshots": sorted(snapshots, key=lambda r: r["id"]),
            "images": sorted(images, key=lambda r: r["id"])}


def _ssm_inventory(backend):
    parameters = []
    tags = backend._resource_tags.get("Parameter") or {}
    for name in sorted(dict.keys(backend._parameters)):
        versions = dict.get(backend._parameters, name)
        if not versions or name.startswith("/aws/"):
            continue
        latest = versions[-1]
        parameters.append({"name": latest.name, "type": latest.parameter_type, "dataType": latest.data_type,
                           "tags": dict(tags.get(name, {}))})
    return parameters


def inventory():
    """Every target (account, region) with something a test made in it."""
    targets = {}

    def target(account, region):
        return targets.setdefault((account, region), {
            "account": account, "region": region, "instances": [], "volumes": [], "snapshots": [],
            "images": [], "parameters": []})

    for account, region, backend in _created_backends(ec2_backends):
        found = _ec2_inventory(backend)
        if any(found.values()):
            target(account, region).update(found)
    for account, region, backend in _created_backends(ssm_backends):
        parameters = _ssm_inventory(backend)
        if parameters:
            target(account, region)["parameters"] = parameters
    return [targets[key] for key in sorted(targets)]


def _get_inventory(environ):
    return "200 OK", {"targets": inventory()}


# --- Registration -------------------------------------------------------------------

core.ADDITIONS.extend([
    "DeregisterImage DeleteAssociatedSnapshots (DeleteSnapshotResults; snapshots another image uses are skipped)",
    "Enable/DisableImageDeregistrationProtection, WithCooldown (knob: cooldown length), DeregistrationProtection "
    "in DescribeImages and DescribeImageAttribute, DeregisterImage refused while protected",
    "DisableImage / EnableImage: state disabled, launch permissions removed, hidden unless IncludeDisabled, "
    "not launchable or shareable",
    "SSM aws:ec2:image: a value that is not an AMI visible to the account in that region is not written "
    "(200 with the version); overwrite without DataType keeps the data type; no change to or from aws:ec2:image",
    "MaxResults/NextToken for DescribeImages, DescribeSnapshots, DescribeVolumes, DescribeInstances "
    "(ranges, no MaxResults with IDs, InvalidPaginationToken)",
    "Organization/OU launch permissions: malformed ARNs refused (InvalidAMIAttributeItemValue); images visible "
    "to member accounts (knob: organizations) in DescribeImages, ExecutableUsers, CopyImage, RunInstances",
    "inventory of what tests made: instances, volumes, snapshots, images, SSM parameters per account and region",
])
core.RESET_HOOKS.append(_reset)
core.CONTROL_ROUTES[("POST", "/autoami-harness/organizations")] = _set_organizations
core.CONTROL_ROUTES[("GET", "/autoami-harness/organizations")] = _get_organizations
core.CONTROL_ROUTES[("POST", "/autoami-harness/deregistration-cooldown")] = _set_cooldown
core.CONTROL_ROUTES[("GET", "/autoami-harness/inventory")] = _get_inventory
