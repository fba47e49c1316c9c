"""What the test world's machines hold on the host, and how it is let go.

Used by autoami_machines:
  - spawn: every service process is started from one long-lived thread
    through `setpriv --pdeathsig KILL`, so that it dies with the moto process
    even when that is SIGKILLed (the parent-death signal fires when the
    *thread* that forked the child ends);
  - release_devices: unmount everything below an instance directory and
    detach the loop devices of its files, as a machine that stops keeps
    neither;
  - allocate_address: a loopback address of its own for each machine.
"""

import ctypes
import fcntl
import os
import queue
import random
import re
import socket
import subprocess
import threading
import time

class _Spawner:
    """Starts every service process from one thread that lives as long as
    the moto process: the parent-death signal (setpriv --pdeathsig) fires
    when the *thread* that forked the child ends, not the process."""

    def __init__(self):
        self.requests = queue.Queue()
        threading.Thread(target=self._loop, name="autoami-machines-spawner", daemon=True).start()

    def _loop(self):
        while True:
            argv, kwargs, box, done = self.requests.get()
            try:
                box.append(subprocess.Popen(argv, **kwargs))
            except BaseException as exc:  # handed to the caller
                box.append(exc)
            done.set()

    def spawn(self, argv, **kwargs):
        box, done = [], threading.Event()
        self.requests.put((argv, kwargs, box, done))
        done.wait()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]


_SPAWNER = _Spawner()


def spawn(argv, **kwargs):
    """subprocess.Popen(argv, **kwargs) from the spawner thread."""
    return _SPAWNER.spawn(argv, **kwargs)


# --- Mounts and loop devices of an instance -----------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
_MNT_DETACH = 2
_LOOP_CLR_FD = 0x4C01


def _unescape_mountinfo(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(directory):
    """Mount points at or below directory, deepest first."""
    prefix = directory.rstrip("/") + "/"
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = _unescape_mountinfo(line.split()[4])
                if point == directory or point.startswith(prefix):
                    found.append(point)
    except OSError:
        return []
    return sorted(found, key=len, reverse=True)


def _loops_under(directory):
    """/dev/loopN whose backing file lies below directory (also when deleted)."""
    prefix = directory.rstrip("/") + "/"
    loops = []
    for entry in sorted(os.listdir("/sys/block")) if os.path.isdir("/sys/block") else []:
        if not entry.startswith("loop"):
            continue
        try:
            with open(f"/sys/block/{entry}/loop/backing_file") as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing.endswith(" (deleted)"):
            backing = backing[: -len(" (deleted)")]
        if backing.startswith(prefix):
            loops.append(f"/dev/{entry}")
    return loops


def _loops_of_file(path):
    """Loop devices backed by path's inode, under any of its names (hard links)."""
    try:
        out = subprocess.run(["losetup", "--associated", path, "--output", "NAME", "--noheadings"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.split() if out.returncode == 0 else []


def release_devices(directory):
    """What a machine that stops keeps of the kernel: nothing. Unmounts
    everything below directory (the daemon's volumes under its state
    directory), then detaches the loop devices of files below it and of the
    volume files linked into its devices/. Returns what could not be undone."""
    problems = []
    for _ in range(3):
        points = mounts_under(directory)
        if not points:
            break
        for point in points:
            if _LIBC.umount2(point.encode(), 0) != 0:
                err = ctypes.get_errno()
                if _LIBC.umount2(point.encode(), _MNT_DETACH) != 0:
                    problems.append(f"unmount {point}: {os.strerror(err)}")
    loops = set(_loops_under(directory))
    devices = os.path.join(directory, "devices")
    if os.path.isdir(devices):
        for name in os.listdir(devices):
            loops.update(_loops_of_file(os.path.join(devices, name)))
    for loop in sorted(loops):
        for attempt in range(20):
            try:
                fd = os.open(loop, os.O_RDONLY)
            except FileNotFoundError:
                break
            try:
                fcntl.ioctl(fd, _LOOP_CLR_FD, 0)
                break
            except OSError as exc:
                if exc.errno == 6:  # ENXIO: not attached (any more)
                    break
                if attempt == 19:
                    problems.append(f"detach {loop}: {exc.strerror}")
            finally:
                os.close(fd)
            time.sleep(0.05)  # EBUSY: the partition scan or udev still holds it
    return problems


# --- Loopback addresses -------------------------------------------------------------------------

_ADDRESSES = set()
_ADDRESS_LOCK = threading.Lock()


def allocate_address(port):
    """A loopback address no other machine of any test world uses: random in
    127.1.0.1-127.254.255.254 (so that parallel test binaries rarely meet),
    checked by binding the port the daemon will listen on."""
    with _ADDRESS_LOCK:
        for _ in range(1000):
            address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            if address in _ADDRESSES:
                continue
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.bind((address, port))
            except OSError:
                continue
            finally:
                probe.close()
            _ADDRESSES.add(address)
            return address
    raise RuntimeError("no free loopback address for a machine")


def release_address(address):
    """The machine that had address is gone."""
    with _ADDRESS_LOCK:
        _ADDRESSES.discard(address)


def forget_addresses():
    """Reset: every machine is gone."""
    with _ADDRESS_LOCK:
        _ADDRESSES.clear()
