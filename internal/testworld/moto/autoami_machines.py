"""Machines that run: launched unpackers, instance states, console output.

An extension of autoami_moto (see its docstring): imported by it after its
own patches, it wraps moto's instance model so that an instance whose
user-data is cloud-config runs that user-data through a stand-in for
cloud-init and systemd, in local mode, and so that RunInstances refuses what
AWS refuses. Every addition names the moto gap it fills ("GAP:") and the AWS
behaviour it follows ("AWS:"), and adds one line to ADDITIONS.

The stand-in understands exactly the bootstrap contract of an unpacker
(deploy/README.md, "Bootstrap contract"; parsed by autoami_cloudinit): the
cloud-config keys packages, write_files, runcmd and bootcmd, the runcmd and
bootcmd forms listed there, and the directives of
deploy/systemd/autoami-unpacker.service.
Anything else in a cloud-config
(another key, another command, another unit directive) fails the instance at
launch: it goes pending -> terminated with StateReason
TestWorld.UserDataNotUnderstood naming what was not understood, also written
to its console and to the moto log. A test world that ignored it would let the
provider come to rely on something no test ran. User-data that cloud-init
would act on in another way (#!, #include, MIME, gzip, ...) fails the same
way; user-data cloud-init ignores (none, or text without a cloud-init header)
gives a plain instance with no process.

Only two things differ from an instance, both explicit: the daemon listens on
a loopback address of its own (127.x.y.z, which DescribeInstances reports as
PrivateIpAddress; the port of its --listen is kept), and it gets
--local-devices <instance dir>/devices (volumes are files there, hard-linked
by autoami_blocks at AttachVolume). Absolute paths in the unit's command line
are mapped into the instance's root directory.

Per instance, in DATA_DIR/<account>/<region>/instances/<instance-id>/:
  root/          its file system: write_files land here, the binary is
                 downloaded here, the daemon's state directory is here
  devices/       the daemon's --local-devices (autoami_blocks links volumes)
  console.log    the serial console: the stand-in's lines ("[testworld] ...")
                 and what the unit sends to the console (StandardOutput=
                 ...console: the daemon's stdout, with its fingerprint line)
  journal.log    what the unit sends only to the journal (the daemon's logs)
  testworld/     the power-off shims first on the daemon's PATH
                 (systemctl, poweroff, halt, reboot, shutdown) and the FIFO
                 through which they tell the harness

Instance states follow AWS: RunInstances and StartInstances answer pending
and the instance becomes running after the "instance" pending duration;
StopInstances stops the daemon (SIGTERM, TimeoutStopSec, SIGKILL), unmounts
what it mounted and detaches the loop devices of its devices (a stopped
machine keeps neither), stays stopping for "instanceStopping", then stopped;
StartInstances boots again: the bootcmd of the user-data the instance has
now runs (cloud-init reads it at every boot: a new binary, a new client CA),
then the units enabled by systemctl enable start from the kept root (same
state directory and server key, so the same fingerprint); write_files,
packages and runcmd do not run again (cloud-init runs them once per
instance); RebootInstances stops and boots while the instance stays running;
TerminateInstances stops, stays shutting-down for "instanceShuttingDown",
detaches and deletes volumes (moto, autoami_blocks), removes the instance
directory. The daemon's own power-off (systemctl poweroff, poweroff, ...)
stops or terminates the instance as its InstanceInitiatedShutdownBehavior
says, with StateReason Client.InstanceInitiatedShutdown.

Every daemon is started from one long-lived thread through
`setpriv --pdeathsig KILL`, in a process group of its own: it dies with the
moto process even when that is SIGKILLed (autoami_host). Reset and server stop kill every
daemon, unmount everything under the instance directories, detach their loop
devices and remove the instance directories.

Knobs (POST /autoami-harness/pending, like the core's kinds; Reset returns to
0): "instance" (pending after RunInstances/StartInstances), "instanceStopping",
"instanceShuttingDown", in seconds.

Control route:
  GET /autoami-harness/machines   {"machines": [{"account", "region",
        "instanceId", "state", "address", "dir", "services": [{"unit",
        "pid"}]}]}
"""

import base64
import copy
import datetime
import hashlib
import json
import os
import queue
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ec2.models.instances import Instance, InstanceBackend, InstanceState, StateReason
from moto.ec2.responses.general import General
from moto.ec2.responses.instances import InstanceResponse

import autoami_cloudinit as cloudinit
import autoami_host as host
import autoami_moto as core

core.ADDITIONS.extend([
    "Instances run their cloud-config user-data through a cloud-init/systemd stand-in: an unpacker's "
    "bootstrap (deploy/README.md) starts a real `unpacker serve` on a loopback address of its own "
    "(PrivateIpAddress), with --local-devices; its per-boot part (bootcmd) runs at every start with the "
    "user-data of that boot (a new binary, a new client CA); anything else in a cloud-config fails the instance",
    "Instance states: pending/stopping/shutting-down (knob), stop/start/reboot/terminate act on the "
    "daemon and its mounts and loop devices; idle power-off stops the instance "
    "(Client.InstanceInitiatedShutdown); IncorrectInstanceState for stop/start/reboot in the wrong state",
    "GetConsoleOutput: the instance's own console (base64, last 64 KiB), buffered output posted at state "
    "transitions, Latest=true for the output as of now",
    "RunInstances refuses a missing, invisible, pending or otherwise unavailable AMI, an instance type "
    "that cannot run the AMI's architecture (or is unknown), user-data over 16 KiB; ClientToken is "
    "idempotent (IdempotentParameterMismatch for other parameters)",
    "ModifyInstanceAttribute InstanceType and UserData need a stopped instance, a type of the instance's "
    "architecture, user-data of at most 16 KiB; StopInstances Force kills the daemon at once",
])

# How long instances stay in their transitional states (seconds); knob kinds
# of POST /autoami-harness/pending, restored by Reset like the core's.
core.Harness.PENDING_KINDS = tuple(core.Harness.PENDING_KINDS) + ("instance", "instanceStopping", "instanceShuttingDown")

# AWS (RunInstances, UserData): "User data is limited to 16 KB, in raw form,
# before it is base64-encoded."
USER_DATA_LIMIT = 16384

# AWS (GetConsoleOutput): "Only the most recent 64 KB of console output is
# available."
CONSOLE_LIMIT = 65536

_STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

# What systemd gives a service: PATH (the shims go first) and nothing of the
# moto process's environment.
_SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# StateReason of an instance whose user-data the stand-in does not understand.
NOT_UNDERSTOOD = "TestWorld.UserDataNotUnderstood"


def _log(message):
    print(f"autoami_machines: {message}", file=sys.stderr, flush=True)


def _gmt_now():
    return utcnow().strftime("%Y-%m-%d %H:%M:%S GMT")


# --- Machines -----------------------------------------------------------------------------------


class _HeldState(InstanceState):
    """An instance state only its Machine changes: moto's own start, stop
    and terminate (called for their network and volume bookkeeping) set
    _state.name in place, which would show "terminated" before the machine
    is gone."""

    def __init__(self, name, code):
        super().__init__(name, code)
        self._held = True

    def __setattr__(self, key, value):
        if not getattr(self, "_held", False):
            super().__setattr__(key, value)


class Cancelled(Exception):
    """The machine is being torn down (Reset, server stop)."""


class Service:
    """One running unit: its process and the generation it belongs to."""

    def __init__(self, unit, process, generation):
        self.unit = unit
        self.process = process
        self.generation = generation
        self.exited = threading.Event()
        self.returncode = None
        self.stopping = False


_MACHINES = {}  # (account, region, instance id) -> Machine
_MACHINES_LOCK = threading.Lock()


class Machine:
    """What runs for one instance: its state transitions, its bootstrap and
    its services, one operation at a time on a worker thread."""

    def __init__(self, instance):
        self.instance = instance
        backend = instance.ec2_backend
        self.account, self.region, self.id = backend.account_id, backend.region_name, instance.id
        self.dir = core.data_path(self.account, self.region, "instances", self.id)
        self.root = os.path.join(self.dir, "root")
        self.devices = os.path.join(self.dir, "devices")
        self.console_path = os.path.join(self.dir, "console.log")
        self.journal_path = os.path.join(self.dir, "journal.log")
        self.shim_dir = os.path.join(self.dir, "testworld", "bin")
        self.fifo = os.path.join(self.dir, "testworld", "power")
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.devices, exist_ok=True)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.ops = queue.Queue()
        self.cancelled = False
        self.finished = False
        self.services = {}
        self.generation = 0
        self.start_times = []
        self.bootstrap = None
        self.failure = None
        self.address = None
        self.posted = (b"", utcnow())
        self.final_console = None
        self.worker = None
        self.listener = None
        try:
            self.bootstrap = self._read_user_data()
        except cloudinit.NotUnderstood as exc:
            self.failure = str(exc)
        if self.bootstrap is not None and self.bootstrap.port is not None:
            self.address = host.allocate_address(self.bootstrap.port)
            nic = instance.nics.get(0)
            if nic is not None:
                nic.private_ip_address = self.address
                nic.private_ip_addresses = [{"Primary": True, "PrivateIpAddress": self.address}]
                nic.private_dns_name = instance.private_dns_name
        instance._state = _HeldState("pending", 0)
        instance.state_reason = StateReason("pending", "pending")
        instance._reason = ""
        with _MACHINES_LOCK:
            _MACHINES[(self.account, self.region, self.id)] = self

    def _read_user_data(self):
        """The instance's user-data as the stand-in runs it: a Bootstrap, or
        None for user-data cloud-init ignores. Raises NotUnderstood.
        cloud-init reads the user-data again at every boot (bootcmd runs
        the commands of the user-data the instance has then)."""
        try:
            raw = base64.b64decode(str(self.instance.user_data)) if self.instance.user_data is not None else b""
        except ValueError as exc:
            raise cloudinit.NotUnderstood(f"user-data is not base64: {exc}") from exc
        kind, text = cloudinit.classify_user_data(raw)
        if kind != "cloud-config":
            return None
        return cloudinit.Bootstrap(text, self.instance.architecture)

    # -- console --

    def console(self, line):
        """A line of the stand-in on the serial console (as cloud-init's and
        systemd's status lines are on a real one)."""
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        try:
            with open(self.console_path, "ab") as f:
                f.write(f"[testworld {stamp}] {line}\n".encode())
        except OSError:
            pass

    def _console_tail(self):
        if self.final_console is not None:
            return self.final_console
        try:
            with open(self.console_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - CONSOLE_LIMIT))
                mtime = os.fstat(f.fileno()).st_mtime
                return f.read(CONSOLE_LIMIT), datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).replace(tzinfo=None)
        except OSError:
            return b"", utcnow()

    def _post(self):
        """AWS posts the buffered console output shortly after each state
        transition; without Latest, GetConsoleOutput answers the last post."""
        data, _ = self._console_tail()
        self.posted = (data, utcnow())

    def console_output(self, latest):
        if latest:
            data, when = self._console_tail()
            return data, when
        return self.posted

    # -- states --

    def _set_state(self, name, code=None, message=None, transition=None):
        """Under self.lock."""
        self.instance._state = _HeldState(name, _STATE_CODES[name])
        if code is not None:
            self.instance.state_reason = StateReason(message, code)
        if transition is not None:
            self.instance._reason = transition
        self.changed.notify_all()

    def state(self):
        return self.instance._state.name

    def _wait(self, seconds, while_state):
        """Sleep seconds while the instance stays in while_state; False when
        it left it (an API call moved it on). Raises Cancelled."""
        deadline = time.monotonic() + seconds
        with self.lock:
            while True:
                if self.cancelled:
                    raise Cancelled()
                if self.state() != while_state:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self.changed.wait(left)

    def submit(self, op, **kwargs):
        self.ops.put((op, kwargs))

    def launch(self):
        self.worker = threading.Thread(target=self._work, name=f"machine-{self.id}", daemon=True)
        self.worker.start()
        self.submit("launch")

    def _work(self):
        while True:
            op, kwargs = self.ops.get()
            if op == "quit" or self.cancelled:
                return
            try:
                getattr(self, "_op_" + op)(**kwargs)
            except Cancelled:
                return
            except Exception:
                text = traceback.format_exc()
                _log(f"{self.id}: {op} failed: {text}")
                self.console(f"the test world failed in {op}: {text.strip().splitlines()[-1]}")
            if self.finished:
                return

    # -- API (request threads) --

    def api_stop(self, force=False):
        with self.lock:
            previous = copy.copy(self.instance._state)
            if self.state() in ("stopping", "stopped"):
                return previous
            if self.state() != "running":
                raise EC2ClientError("IncorrectInstanceState",
                                     f"This instance '{self.id}' is not in a state from which it can be stopped.")
            self._set_state("stopping", "Client.UserInitiatedShutdown",
                            "Client.UserInitiatedShutdown: User initiated shutdown", f"User initiated ({_gmt_now()})")
            self.submit("halt", then="stopped", by_instance=False, force=force)
            return previous

    def api_start(self):
        with self.lock:
            previous = copy.copy(self.instance._state)
            if self.state() in ("pending", "running"):
                return previous
            if self.state() != "stopped":
                raise EC2ClientError("IncorrectInstanceState",
                                     f"The instance '{self.id}' is not in a state from which it can be started.")
            self._set_state("pending", "pending", "pending", "")
            self.submit("start")
            return previous

    def api_reboot(self):
        with self.lock:
            if self.state() != "running":
                raise EC2ClientError("IncorrectInstanceState", f"The instance '{self.id}' is not in the 'running' state.")
            self.submit("reboot")

    def api_terminate(self):
        with self.lock:
            previous = copy.copy(self.instance._state)
            if self.state() in ("shutting-down", "terminated"):
                return previous
            self._set_state("shutting-down", "Client.UserInitiatedShutdown",
                            "Client.UserInitiatedShutdown: User initiated shutdown", f"User initiated ({_gmt_now()})")
            self.submit("halt", then="terminated", by_instance=False)
            return previous

    def power_request(self, kind):
        """From the shims: the machine powers itself off (or reboots)."""
        with self.lock:
            if self.state() != "running":
                return
            self.console(f"power request from inside the instance: {kind}")
            if kind == "reboot":
                self.submit("reboot")
                return
            # AWS: the instance stops or terminates as its
            # InstanceInitiatedShutdownBehavior says; StateReason
            # Client.InstanceInitiatedShutdown, StateTransitionReason
            # "User initiated" without a time (as DescribeInstances shows it
            # for shutdowns from inside).
            terminate = self.instance.instance_initiated_shutdown_behavior == "terminate"
            self._set_state("shutting-down" if terminate else "stopping", "Client.InstanceInitiatedShutdown",
                            "Client.InstanceInitiatedShutdown: Instance initiated shutdown", "User initiated")
            self.submit("halt", then="terminated" if terminate else "stopped", by_instance=True)

    # -- operations (worker thread) --

    def _op_launch(self):
        if not self._wait(core.HARNESS.pending.get("instance", 0.0), "pending"):
            return
        if self.failure is not None:
            self._fail("pending", self.failure)
            return
        with self.lock:
            if self.state() != "pending":
                return
            self._set_state("running", "", "", "")
            self.instance.state_reason = StateReason()
            self.console(f"instance {self.id} running" + (f", address {self.address}" if self.address else ""))
            self._post()
        if self.bootstrap is None:
            self.console("cloud-init: no cloud-config in the user-data; nothing to run")
            return
        # cloud-init's init stage: bootcmd (every boot), then write_files.
        self._run_bootcmd(self.bootstrap)
        self._run_bootstrap()

    def _fail(self, state, failure):
        """User-data the stand-in does not run ends the instance: terminated,
        with TestWorld.UserDataNotUnderstood naming what."""
        self.console(f"cloud-init: user-data not understood: {failure}")
        _log(f"{self.account}/{self.region}/{self.id}: user-data not understood: {failure}")
        self._halt_services(force=True)
        self._release()
        with self.lock:
            if self.state() != state:
                return
            self._moto_terminate()
            self._post()
            self._finish()
            message = f"{NOT_UNDERSTOOD}: {failure}"
            self._set_state("terminated", NOT_UNDERSTOOD, message, message)

    def _boot_user_data(self, state):
        """At a later boot: the user-data of this boot (it may have changed
        while the instance was stopped), its bootcmd run; False when the
        instance failed on it."""
        try:
            bootstrap = self._read_user_data()
        except cloudinit.NotUnderstood as exc:
            self._fail(state, str(exc))
            return False
        if bootstrap is not None:
            self._run_bootcmd(bootstrap)
        return True

    def _op_start(self):
        if not self._wait(core.HARNESS.pending.get("instance", 0.0), "pending"):
            return
        with self.lock:
            if self.state() != "pending":
                return
            self._moto_call(_moto_start)
            self._set_state("running", "", "", "")
            self.instance.state_reason = StateReason()
            self.console(f"instance {self.id} running again")
            self._post()
        if self._boot_user_data("running"):
            self._boot()

    def _op_reboot(self):
        self.console("reboot")
        self._halt_services(force=False)
        self._release()
        with self.lock:
            if self.state() != "running":
                return
            self._post()
        if self._boot_user_data("running"):
            self._boot()

    def _op_halt(self, then, by_instance, force=False):
        self._halt_services(force=force)
        self._release()
        transitional = "stopping" if then == "stopped" else "shutting-down"
        key = "instanceStopping" if then == "stopped" else "instanceShuttingDown"
        self._wait(core.HARNESS.pending.get(key, 0.0), transitional)
        with self.lock:
            if self.state() != transitional:
                return
            reason = (self.instance.state_reason.code, self.instance.state_reason.message, self.instance._reason)
            self.console(f"instance {self.id} {then}")
            self._post()
            if then == "stopped":
                self._moto_call(_moto_stop)
            else:
                self._moto_terminate()
                # Gone before anyone sees "terminated".
                self._finish()
            self._set_state(then, *reason)

    def _op_service_exited(self, unit, generation):
        with self.lock:
            service = self.services.get(unit)
            if service is None or service.generation != generation or service.stopping:
                return
            code = service.returncode
            del self.services[unit]
            self.console(f"systemd: {unit}: main process exited, status={_status_text(code)}")
            failed = code != 0
            restart = service.unit.restart == "always" or (service.unit.restart == "on-failure" and failed)
            if not restart or self.state() != "running":
                if failed:
                    self.console(f"systemd: {unit}: failed")
                return
        # systemd's default start limit: 5 starts within 10 s.
        now = time.monotonic()
        recent = [t for t in self.start_times if now - t < 10.0]
        if len(recent) >= 5:
            self.console(f"systemd: {unit}: start request repeated too quickly; failed")
            return
        if not self._wait(service.unit.restart_sec, "running"):
            return
        self._start_unit(service.unit)

    # -- bootstrap: cloud-init's modules, once per instance --

    def _run_bootcmd(self, bootstrap):
        """cloud-init's bootcmd: every boot, before the units start; one sh
        script without -e, so a failed item does not stop the next."""
        for index, step in enumerate(bootstrap.bootcmd):
            with self.lock:
                if self.cancelled:
                    raise Cancelled()
                if self.state() != "running":
                    return
            path = self._in_root(step["path"])
            if not os.path.exists(path):
                continue  # the first boot: runcmd and write_files install it
            if step["op"] == "write-if-exists":
                with open(path, "wb") as f:
                    f.write(step["data"])
                continue
            if self._digest(path) == step["digest"]:
                continue
            self.console(f"cloud-init: bootcmd[{index}]: {step['path']} is not {step['digest'][:12]}...; installing it")
            new = step["path"] + ".new"
            error = self._curl(step["curl"])
            if error is None:
                error = self._run_step({"op": "sha256", "digest": step["digest"], "path": new})
            if error is None:
                os.chmod(self._in_root(new), step["mode"])
                os.replace(self._in_root(new), path)
            else:
                self.console(f"cloud-init: bootcmd[{index}] failed: {error}")

    @staticmethod
    def _digest(path):
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()

    def _run_bootstrap(self):
        b = self.bootstrap
        self.console("cloud-init: write_files")
        for f in b.files:
            path = self._in_root(f["path"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                out.write(f["data"])
            os.chmod(path, f["mode"])
        if b.packages:
            self.console("cloud-init: packages (already on the test world's host): " + " ".join(b.packages))
        for index, step in enumerate(b.steps, 1):
            with self.lock:
                if self.cancelled:
                    raise Cancelled()
                if self.state() != "running":
                    self.console("cloud-init: interrupted by a shutdown")
                    return
            error = self._run_step(step)
            if error is not None:
                # runcmd is one sh script under set -e: the first failure ends it.
                self.console(f"cloud-init: runcmd[{index}] failed: {error}")
                self.console("cloud-init: Failed to run module scripts_user")
                return
        self.console("cloud-init: finished")

    def _run_step(self, step):
        op = step["op"]
        if op == "curl":
            return self._curl(step)
        if op == "sha256":
            path = self._in_root(step["path"])
            try:
                with open(path, "rb") as f:
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
            except OSError as exc:
                return f"sha256sum: {step['path']}: {exc.strerror}"
            if digest != step["digest"]:
                self.console(f"{step['path']}: FAILED")
                return f"sha256sum: WARNING: 1 computed checksum did NOT match (got {digest})"
            self.console(f"{step['path']}: OK")
            return None
        if op == "chmod":
            try:
                os.chmod(self._in_root(step["path"]), step["mode"])
            except OSError as exc:
                return f"chmod: {step['path']}: {exc.strerror}"
            return None
        if op == "daemon-reload":
            return None
        if op == "enable-now":
            unit = self._load_unit(step["unit"])
            if isinstance(unit, str):
                return unit
            if unit.wanted_by:
                link = self._in_root(f"/etc/systemd/system/multi-user.target.wants/{step['unit']}")
                os.makedirs(os.path.dirname(link), exist_ok=True)
                if not os.path.lexists(link):
                    os.symlink(step["path"], link)
                self.console(f"systemctl: Created symlink /etc/systemd/system/multi-user.target.wants/{step['unit']} "
                             f"-> {step['path']}.")
            return self._start_unit(unit)
        return f"unknown step {op}"

    def _curl(self, step):
        """curl -fsS --retry N -o PATH URL: transient errors (timeouts, HTTP
        408, 429, 500, 502, 503, 504) are retried after 1 s, doubling, or
        after Retry-After; -f makes HTTP >= 400 an error (curl exit 22)."""
        out = self._in_root(step["out"])
        os.makedirs(os.path.dirname(out), exist_ok=True)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        delay = 1.0
        for attempt in range(step["retries"] + 1):
            transient, error = False, None
            try:
                with opener.open(step["url"], timeout=60) as resp, open(out, "wb") as f:
                    shutil.copyfileobj(resp, f, 1 << 20)
                os.chmod(out, 0o644)
                return None
            except urllib.error.HTTPError as exc:
                body = exc.read()
                transient = exc.code in (408, 429, 500, 502, 503, 504)
                if not step["fail"]:
                    with open(out, "wb") as f:
                        f.write(body)
                    return None
                error = f"curl: (22) The requested URL returned error: {exc.code}"
                after = exc.headers.get("Retry-After") if exc.headers else None
                if after and after.isdigit():
                    delay = float(after)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                transient = isinstance(reason, (socket.timeout, TimeoutError))
                error = f"curl: (7) {reason}"
            if not transient or attempt == step["retries"]:
                return error
            self.console(f"Warning: Problem : {error}. Will retry in {delay:g} seconds. "
                         f"{step['retries'] - attempt} retries left.")
            if not self._wait(delay, "running"):
                return "interrupted by a shutdown"
            delay = min(delay * 2, 600.0)
        return error

    # -- systemd: units --

    def _in_root(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _load_unit(self, name):
        """The unit as it is on disk now (systemd reads it at daemon-reload
        and boot), or an error text."""
        try:
            with open(self._in_root(f"/etc/systemd/system/{name}"), encoding="utf-8") as f:
                return cloudinit.Unit(name, f.read())
        except OSError as exc:
            return f"Failed to enable unit: Unit file {name} does not exist ({exc.strerror})"
        except cloudinit.NotUnderstood as exc:
            return f"unit {name} not understood: {exc}"

    def _boot(self):
        """systemd at boot: start the units enabled for multi-user.target."""
        wants = self._in_root("/etc/systemd/system/multi-user.target.wants")
        names = sorted(os.listdir(wants)) if os.path.isdir(wants) else []
        for name in names:
            with self.lock:
                if self.state() != "running":
                    return
            unit = self._load_unit(name)
            if isinstance(unit, str):
                self.console(f"systemd: {unit}")
                continue
            error = self._start_unit(unit)
            if error:
                self.console(f"systemd: {error}")

    def _environment(self, unit):
        def read(path):
            try:
                with open(self._in_root(path), encoding="utf-8") as f:
                    return f.read()
            except FileNotFoundError:
                return None

        return cloudinit.unit_environment(unit, read)

    def _command(self, unit, env):
        """ExecStart with $NAME / ${NAME} expanded as systemd does, absolute
        paths mapped into the instance root, the listen host replaced by the
        machine's own address, and --local-devices added."""
        words = cloudinit.expand_command(unit, env)
        out, i = [], 0
        while i < len(words):
            word = words[i]
            if word in ("--local-devices", "-local-devices") or word.startswith(("--local-devices=", "-local-devices=")):
                raise cloudinit.NotUnderstood("the unit's command line already has --local-devices")
            if word in ("--listen", "-listen") and i + 1 < len(words):
                out += [word, self._listen(words[i + 1])]
                i += 2
                continue
            if word.startswith(("--listen=", "-listen=")):
                flag, value = word.split("=", 1)
                out.append(f"{flag}={self._listen(value)}")
            elif word.startswith("/"):
                out.append(self._in_root(word))
            elif re.match(r"^-{1,2}[A-Za-z0-9][\w-]*=/", word):
                flag, value = word.split("=", 1)
                out.append(f"{flag}={self._in_root(value)}")
            else:
                out.append(word)
            i += 1
        return out + ["--local-devices", self.devices]

    def _listen(self, value):
        host, _, port = value.rpartition(":")
        return f"{self.address}:{port}"

    def _start_unit(self, unit):
        """Start one service; an error text when it cannot start."""
        try:
            env = self._environment(unit)
            argv = self._command(unit, env)
        except cloudinit.NotUnderstood as exc:
            return f"Failed to start {unit.name}: {exc}"
        if not os.access(argv[0], os.X_OK):
            return f"Failed to start {unit.name}: {unit.exec_start[0]}: not an executable file"
        for name in unit.state_directories:
            path = self._in_root(f"/var/lib/{name}")
            os.makedirs(path, exist_ok=True)
            os.chmod(path, unit.state_directory_mode)
        self._write_shims()
        self._ensure_listener()
        env["PATH"] = self.shim_dir + ":" + _SERVICE_PATH
        wrapper = ["setpriv", "--pdeathsig", "KILL", "--"]
        if unit.limit_nofile:
            # Up to the host's hard limit: a container's root may not raise it.
            soft, _, hard = unit.limit_nofile.partition(":")
            host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            if host_hard != resource.RLIM_INFINITY:
                soft, hard = min(int(soft), host_hard), min(int(hard or soft), host_hard)
            wrapper = ["prlimit", f"--nofile={soft}:{hard or soft}", "--"] + wrapper
        files = []
        try:
            outputs = {}
            for stream, target in (("stdout", unit.stdout), ("stderr", unit.stderr)):
                if target == "inherit":
                    outputs[stream] = outputs["stdout"]
                elif target == "null":
                    outputs[stream] = subprocess.DEVNULL
                else:
                    f = open(self.console_path if "console" in target else self.journal_path, "ab")
                    files.append(f)
                    outputs[stream] = f
            with self.lock:
                if self.cancelled:
                    raise Cancelled()
                if self.state() != "running":
                    return None
                self.generation += 1
                self.console(f"systemd: Starting {unit.name} - {unit.description}: {shlex.join(argv)}")
                process = host.spawn(wrapper + argv, stdin=subprocess.DEVNULL, stdout=outputs["stdout"],
                                         stderr=outputs["stderr"], cwd=self.root, env=env, process_group=0,
                                         close_fds=True)
                service = Service(unit, process, self.generation)
                self.services[unit.name] = service
                self.start_times.append(time.monotonic())
        except OSError as exc:
            return f"Failed to start {unit.name}: {exc}"
        finally:
            for f in files:
                f.close()
        threading.Thread(target=self._supervise, args=(service,), name=f"service-{self.id}", daemon=True).start()
        return None

    def _supervise(self, service):
        service.returncode = service.process.wait()
        service.exited.set()
        if not self.cancelled:
            self.submit("service_exited", unit=service.unit.name, generation=service.generation)

    def _halt_services(self, force):
        """systemd stopping every service: SIGTERM to its process group,
        SIGKILL after TimeoutStopSec (at once with force)."""
        with self.lock:
            services = list(self.services.values())
            for s in services:
                s.stopping = True
            self.services = {}
        for s in services:
            _signal_group(s.process, signal.SIGKILL if force else signal.SIGTERM)
            deadline = time.monotonic() + s.unit.timeout_stop
            while not s.exited.wait(0.05):
                if self.cancelled or time.monotonic() >= deadline:
                    self.console(f"systemd: {s.unit.name}: stop timed out; killing")
                    _signal_group(s.process, signal.SIGKILL)
                    s.exited.wait(10)
                    break
            self.console(f"systemd: Stopped {s.unit.name} (status={_status_text(s.returncode)})")

    def _release(self):
        problems = host.release_devices(self.dir)
        for p in problems:
            self.console(f"the test world could not release: {p}")
            _log(f"{self.id}: {p}")

    def _moto_terminate(self):
        """moto's terminate: network interfaces, volumes (detached, deleted
        on termination by autoami_blocks's teardown); the state and its
        reasons stay the machine's."""
        self._moto_call(_moto_terminate)

    def _moto_call(self, method):
        reasons = (self.instance.state_reason, self.instance._reason)
        method(self.instance)
        self.instance.state_reason, self.instance._reason = reasons

    def _finish(self):
        """Terminated: the instance's directory goes, before the state says
        so; its console stays readable (AWS keeps it for at least an
        hour)."""
        self.final_console = self._console_tail()
        self.finished = True
        self._stop_listener()
        self._release()
        _remove_tree(self.dir)
        host.release_address(self.address)

    # -- power-off shims --

    _SHIM = """#!/bin/sh
# The test world's {name}: a power request from inside the instance goes to
# the harness (autoami_machines.py), which stops, terminates or reboots the
# instance as EC2 would. Written by the test world, not part of the image.
name=$(basename "$0")
req=
case "$name" in
systemctl) case "$1" in poweroff|halt|reboot) req=$1 ;; esac ;;
poweroff|halt|reboot) req=$name ;;
shutdown) req=poweroff; for a in "$@"; do [ "$a" = -r ] && req=reboot; done ;;
esac
if [ -z "$req" ]; then
    echo "$name $*: the test world's machines only power off, halt and reboot here" >&2
    exit 1
fi
printf '%s\\n' "$req" > {fifo}
"""

    def _write_shims(self):
        os.makedirs(self.shim_dir, exist_ok=True)
        for name in ("systemctl", "poweroff", "halt", "reboot", "shutdown"):
            path = os.path.join(self.shim_dir, name)
            if not os.path.exists(path):
                with open(path, "w") as f:
                    f.write(self._SHIM.format(name=name, fifo=shlex.quote(self.fifo)))
                os.chmod(path, 0o755)

    def _ensure_listener(self):
        with self.lock:
            if self.listener is not None:
                return
            if not os.path.exists(self.fifo):
                os.mkfifo(self.fifo, 0o600)
            self.listener = threading.Thread(target=self._listen_power, name=f"power-{self.id}", daemon=True)
            self.listener.start()

    def _listen_power(self):
        # O_RDWR: the open does not wait for a writer and reads never see EOF.
        fd = os.open(self.fifo, os.O_RDWR)
        buf = b""
        try:
            while True:
                chunk = os.read(fd, 4096)
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    request = line.decode(errors="replace").strip()
                    if request == "quit":
                        return
                    if request in ("poweroff", "halt", "reboot"):
                        self.power_request(request)
        finally:
            os.close(fd)

    def _stop_listener(self):
        if self.listener is None:
            return
        try:
            fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"quit\n")
            os.close(fd)
        except OSError:
            pass
        self.listener.join(5)
        self.listener = None

    # -- teardown (Reset, server stop) --

    def kill(self):
        """Reset: every process SIGKILLed, nothing kept."""
        with self.lock:
            self.cancelled = True
            services = list(self.services.values())
            self.services = {}
            self.changed.notify_all()
        for s in services:
            s.stopping = True
            _signal_group(s.process, signal.SIGKILL)
        for s in services:
            s.exited.wait(10)
        self.ops.put(("quit", {}))
        if self.worker is not None and self.worker is not threading.current_thread():
            self.worker.join(10)
        self._stop_listener()
        self._release()

    def describe(self):
        with self.lock:
            return {
                "account": self.account, "region": self.region, "instanceId": self.id, "state": self.state(),
                "address": self.address or "", "dir": self.dir,
                "services": [{"unit": n, "pid": s.process.pid} for n, s in sorted(self.services.items())],
            }


def _status_text(code):
    if code is None:
        return "unknown"
    if code < 0:
        return f"{-code}/{signal.Signals(-code).name}"
    return str(code)


def _signal_group(process, sig):
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _remove_tree(path):
    """Remove a machine's directory, never across a mount point."""
    if host.mounts_under(path):
        _log(f"not removing {path}: mounts remain below it {host.mounts_under(path)}")
        return
    shutil.rmtree(path, ignore_errors=True)


def machine_of(instance):
    with _MACHINES_LOCK:
        return _MACHINES.get((instance.ec2_backend.account_id, instance.ec2_backend.region_name, instance.id))


# --- moto's instance model -----------------------------------------------------------------
# GAP: instances run nothing and change state at once (running at launch,
# stopped at StopInstances); GetConsoleOutput is canned text from 2006;
# reboot, stop and start of a stopped or stopping instance are accepted.
# AWS: pending -> running, stopping -> stopped, shutting-down -> terminated
# take time; the console is the instance's; StopInstances needs a running
# instance, StartInstances a stopped one (IncorrectInstanceState otherwise).

_moto_instance_init = Instance.__init__
_moto_start = Instance.start
_moto_stop = Instance.stop
_moto_terminate = Instance.terminate
_moto_reboot = Instance.reboot


def _instance_init(self, *args, **kwargs):
    _moto_instance_init(self, *args, **kwargs)
    Machine(self)


def _instance_start(self):
    m = machine_of(self)
    return m.api_start() if m is not None else _moto_start(self)


def _instance_stop(self):
    m = machine_of(self)
    return m.api_stop(force=getattr(_REQUEST, "force", False)) if m is not None else _moto_stop(self)


def _instance_terminate(self):
    m = machine_of(self)
    return m.api_terminate() if m is not None else _moto_terminate(self)


def _instance_reboot(self):
    m = machine_of(self)
    return m.api_reboot() if m is not None else _moto_reboot(self)


Instance.__init__ = _instance_init
Instance.start = _instance_start
Instance.stop = _instance_stop
Instance.terminate = _instance_terminate
Instance.reboot = _instance_reboot

_prev_run_instances = InstanceBackend.run_instances


def _run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
    reservation = _prev_run_instances(self, image_id, count, user_data, security_group_names, **kwargs)
    for instance in reservation.instances:
        m = machine_of(instance)
        if m is not None and m.worker is None:
            m.launch()
    return reservation


InstanceBackend.run_instances = _run_instances

# AWS (StopInstances, Force): a forced stop skips the orderly shutdown: the
# daemon gets SIGKILL at once.
_REQUEST = threading.local()
_prev_stop_instances_response = InstanceResponse.stop_instances


def _stop_instances_response(self):
    _REQUEST.force = self._get_bool_param("Force", False)
    try:
        return _prev_stop_instances_response(self)
    finally:
        _REQUEST.force = False


InstanceResponse.stop_instances = _stop_instances_response


# --- RunInstances: what AWS refuses; ClientToken ----------------------------------------------
# GAP: RunInstances launches any image ID (missing, another account's
# private image, pending), any instance type with any architecture, and
# user-data of any size; a repeated ClientToken launches again.
# AWS (RunInstances; Ensuring idempotency): InvalidAMIID.NotFound for an
# image the caller cannot see, InvalidAMIID.Malformed, InvalidAMIID.Unavailable
# for an image that is not available; InvalidParameterValue when the
# instance type's architectures do not include the image's, and for user-data
# over 16 KiB before base64; the same ClientToken returns the first
# reservation, IdempotentParameterMismatch when the parameters differ.
# The Unavailable message and refusing an unknown instance type with
# InvalidParameterValue are the harness's best guesses.

_CLIENT_TOKENS = {}  # (account, region, token) -> (parameters digest, reservation id)
_TOKEN_LOCK = threading.Lock()
_IGNORED_PARAMS = {"Action", "Version", "ClientToken", "DryRun"}


def _check_run_instances(response):
    backend = response.ec2_backend
    image_id = response._get_param("ImageId")
    template = response._get_param("LaunchTemplate", {})
    if not image_id and template:
        image_id = backend._get_template_from_args(template).image_id
    if image_id:
        if not re.fullmatch(r"ami-[0-9a-f]{8}([0-9a-f]{9})?", image_id):
            raise EC2ClientError("InvalidAMIID.Malformed", f'Invalid id: "{image_id}" (expecting "ami-...")')
        ami = core._visible_images(backend).get(image_id)
        if ami is None:
            raise InvalidAMIIdError(image_id)
        if ami.state != "available":
            raise EC2ClientError("InvalidAMIID.Unavailable",
                                 f"The image id '[{image_id}]' is not available (state: {ami.state})")
        _check_architecture(response._get_param("InstanceType") or "m1.small", ami.architecture, image_id)
    _check_user_data(response._get_param("UserData"))


def _check_architecture(instance_type, architecture, image_id):
    info = INSTANCE_TYPES.get(instance_type)
    if info is None:
        raise EC2ClientError("InvalidParameterValue", f"Invalid value '{instance_type}' for InstanceType.")
    supported = info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
    if architecture not in supported:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"The architecture '{', '.join(supported)}' of the specified instance type ({instance_type}) does not "
            f"match the architecture '{architecture}' of the specified AMI ({image_id}). Specify an instance "
            "type and an AMI that have matching architectures, and try again. You can use "
            "'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.",
        )


def _check_user_data(encoded):
    """encoded: user-data as sent (base64)."""
    if not encoded:
        return
    try:
        size = len(base64.b64decode(str(encoded), validate=True))
    except ValueError:
        raise EC2ClientError("InvalidParameterValue", "Invalid BASE64 encoding of user data.")
    if size > USER_DATA_LIMIT:
        raise EC2ClientError("InvalidParameterValue",
                             f"User data is limited to {USER_DATA_LIMIT} bytes (got {size} bytes before base64)")


def _request_digest(response):
    params = {k: v for k, v in response.querystring.items() if k not in _IGNORED_PARAMS}
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


_prev_run_instances_response = InstanceResponse.run_instances


def _run_instances_response(self):
    token = self._get_param("ClientToken")
    if not token:
        _check_run_instances(self)
        return _prev_run_instances_response(self)
    key = (self.current_account, self.region, token)
    digest = _request_digest(self)
    with _TOKEN_LOCK:
        known = _CLIENT_TOKENS.get(key)
        if known is not None:
            if known[0] != digest:
                raise EC2ClientError("IdempotentParameterMismatch",
                                     "Arguments on this idempotent request are inconsistent with arguments used in "
                                     "previous request(s).")
            reservation = self.ec2_backend.reservations.get(known[1])
            if reservation is not None:
                self.error_on_dryrun()
                return ActionResult(reservation)
        _check_run_instances(self)
        result = _prev_run_instances_response(self)
        _CLIENT_TOKENS[key] = (digest, result.result.id)
        return result


InstanceResponse.run_instances = _run_instances_response


# --- GetConsoleOutput -------------------------------------------------------------------------


_prev_get_console_output = General.get_console_output


def _get_console_output(self):
    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    m = machine_of(instance)
    if m is None:
        return _prev_get_console_output(self)
    self.error_on_dryrun()
    data, when = m.console_output(self._get_bool_param("Latest", False))
    result = {"InstanceId": instance.id, "Timestamp": when}
    if data:
        result["Output"] = core_b64(data)
    return ActionResult(result)


def core_b64(data):
    from moto.core.types import Base64EncodedString

    return Base64EncodedString(base64.b64encode(data).decode("ascii"))


General.get_console_output = _get_console_output


# --- Reset, stop, control -----------------------------------------------------------------------


def _teardown_all():
    with _MACHINES_LOCK:
        machines = list(_MACHINES.values())
        _MACHINES.clear()
    threads = [threading.Thread(target=m.kill, daemon=True) for m in machines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with _TOKEN_LOCK:
        _CLIENT_TOKENS.clear()
    host.forget_addresses()
    if core.DATA_DIR and os.path.isdir(core.DATA_DIR):
        for account in os.listdir(core.DATA_DIR):
            account_dir = os.path.join(core.DATA_DIR, account)
            for region in os.listdir(account_dir) if os.path.isdir(account_dir) else []:
                instances = os.path.join(account_dir, region, "instances")
                if os.path.isdir(instances):
                    for problem in host.release_devices(instances):
                        _log(f"reset: {problem}")
                    _remove_tree(instances)


core.RESET_HOOKS.append(_teardown_all)
core.STOP_HOOKS.append(_teardown_all)


def _machines_route(environ):
    with _MACHINES_LOCK:
        machines = list(_MACHINES.values())
    return "200 OK", {"machines": [m.describe() for m in machines]}


core.CONTROL_ROUTES[("GET", "/autoami-harness/machines")] = _machines_route


# --- ModifyInstanceAttribute --------------------------------------------------------------------
# GAP: the instance type and user data of a running instance change at once,
# to any type and any size. AWS (ModifyInstanceAttribute; Change the
# instance type): both need a stopped instance (IncorrectInstanceState); the
# new type must run the instance's architecture; user data is at most 16 KiB.
# A changed user data is not run by cloud-init at the next start (its
# modules run once per instance), so the stand-in keeps the first.

_prev_modify_instance_attribute = InstanceBackend.modify_instance_attribute


def _modify_instance_attribute(self, instance_id, key, value):
    if key in ("instance_type", "user_data"):
        instance = self.get_instance(instance_id)
        if instance.state != "stopped":
            raise EC2ClientError("IncorrectInstanceState", f"The instance '{instance_id}' is not in the 'stopped' state.")
        if key == "instance_type":
            _check_architecture(value, instance.architecture, instance.image_id)
        else:
            _check_user_data(value)
    return _prev_modify_instance_attribute(self, instance_id, key, value)


InstanceBackend.modify_instance_attribute = _modify_instance_attribute


# GAP: ModifyInstanceAttribute's UserData.Value is a blob, which SDKs send
# base64-encoded once (aws-sdk-go-v2 encodes the bytes it is given, so
# terraform-provider-aws passes the raw user data). moto's query parser
# decodes it to those raw bytes, and moto's parse_user_data then takes them
# for base64 text: it refused real user data (InvalidUserData.Malformed) and
# stored base64 text given twice encoded as the user data. AWS stores the
# bytes as given; user data sent as a string (RunInstances) is base64 text.
import moto.ec2.responses.instances as _instance_responses  # noqa: E402

_prev_parse_user_data = _instance_responses.parse_user_data


def _parse_user_data(value):
    if isinstance(value, (bytes, bytearray)):
        return core_b64(bytes(value))
    return _prev_parse_user_data(value)


_instance_responses.parse_user_data = _parse_user_data
