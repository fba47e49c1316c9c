"""The bootstrap contract of an unpacker, as the test world's stand-in for
cloud-init and systemd understands it (deploy/README.md, "Bootstrap
contract").

Used by autoami_machines: it parses user-data into a Bootstrap (the files to
write, the packages, the runcmd steps, the units to enable) and reads unit
files and environment files at every start. Whatever is outside the contract
raises NotUnderstood naming it; autoami_machines fails the instance with that.
"""

import base64
import ipaddress
import os
import re
import shlex
import urllib.parse

import yaml

# Debian packages an unpacker's user-data may install: the table in
# deploy/README.md ("Debian packages the instance needs") and the arm64
# GRUB package named below it; a Go test keeps them equal. The stand-in
# installs nothing (the host has the tools).
DEBIAN_PACKAGES = (
    "curl",
    "ca-certificates",
    "util-linux",
    "e2fsprogs",
    "gdisk",
    "fdisk",
    "dosfstools",
    "mtools",
    "grub-common",
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    "xfsprogs",
    "grub-efi-arm64-bin",
)

# Debian builds these for some architectures only (EC2's names), and an
# apt-get install naming a package the architecture lacks installs nothing at
# all: on AWS such a bootstrap would leave the daemon without its tools.
_PACKAGE_ARCHITECTURES = {
    "grub-pc-bin": ("x86_64", "i386"),
    "grub-efi-amd64-bin": ("x86_64", "i386"),
    "grub-efi-arm64-bin": ("arm64",),
}




class NotUnderstood(Exception):
    """User-data the stand-in does not implement; the message says what."""


# AWS instances run cloud-init, which dispatches user-data on its first
# line; these are the types it acts on. Anything but #cloud-config is beyond
# the stand-in.
_CLOUD_INIT_STARTS = ("#!", "#include", "#cloud-boothook", "#part-handler", "#upstart-job",
                      "#cloud-config-archive", "#cloud-config-jsonp", "## template:", "Content-Type:")


def classify_user_data(raw):
    """("none", None) for user-data cloud-init ignores, ("cloud-config", text),
    or raises NotUnderstood for user-data cloud-init would act on otherwise."""
    if not raw:
        return "none", None
    if raw[:2] == b"\x1f\x8b":
        raise NotUnderstood("gzip-compressed user-data (cloud-init would decompress and run it)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "none", None
    first = text.split("\n", 1)[0].rstrip("\r")
    if first.rstrip() == "#cloud-config":
        return "cloud-config", text
    for start in _CLOUD_INIT_STARTS:
        if first.startswith(start):
            raise NotUnderstood(f"user-data starting {first[:40]!r}: the stand-in runs only #cloud-config")
    return "none", None


class Unit:
    """The directives of a systemd service unit that the stand-in runs."""

    def __init__(self, name, text):
        self.name = name
        self.description = ""
        self.exec_start = None
        self.environment = []  # ("env", {k: v}) or ("file", path, optional), in order
        self.stdout = "journal"
        self.stderr = "inherit"
        self.state_directories = []
        self.state_directory_mode = 0o755
        self.restart = "no"
        self.restart_sec = 0.1
        self.timeout_stop = 90.0
        self.limit_nofile = None
        self.wanted_by = []
        self._parse(text)

    _UNIT_KEYS = {"Description", "Documentation", "Wants", "After", "Before", "Requires"}
    _INSTALL_KEYS = {"WantedBy"}
    _SERVICE_KEYS = {"Type", "Environment", "EnvironmentFile", "ExecStart", "StandardOutput", "StandardError",
                     "User", "StateDirectory", "StateDirectoryMode", "Restart", "RestartSec", "TimeoutStopSec",
                     "LimitNOFILE"}

    def _parse(self, text):
        section, pending = None, None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue  # systemd skips comments also inside a continued line
            if pending is not None:
                line = pending + " " + line
                pending = None
            if line.endswith("\\"):
                pending = line[:-1].rstrip()
                continue
            if line.startswith("["):
                if not line.endswith("]"):
                    raise NotUnderstood(f"unit {self.name} line {number}: {raw!r}")
                section = line[1:-1]
                if section not in ("Unit", "Service", "Install"):
                    raise NotUnderstood(f"unit {self.name}: section [{section}]")
                continue
            key, eq, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or section is None:
                raise NotUnderstood(f"unit {self.name} line {number}: {raw!r}")
            allowed = {"Unit": self._UNIT_KEYS, "Service": self._SERVICE_KEYS, "Install": self._INSTALL_KEYS}[section]
            if key not in allowed:
                raise NotUnderstood(f"unit {self.name}: [{section}] {key}= (the stand-in knows {sorted(allowed)})")
            self._directive(section, key, value)
        if pending is not None:
            raise NotUnderstood(f"unit {self.name}: the last line ends with a backslash")
        if self.exec_start is None:
            raise NotUnderstood(f"unit {self.name}: no ExecStart=")

    def _directive(self, section, key, value):
        where = f"unit {self.name}: {key}={value}"
        if section == "Unit":
            if key == "Description":
                self.description = value
            elif key in ("Wants", "After", "Before", "Requires"):
                # Ordering and requirements on boot targets only: locally the
                # network and the file systems are up before anything starts.
                for target in value.split():
                    if target not in ("network-online.target", "network.target", "local-fs.target"):
                        raise NotUnderstood(f"{where}: the stand-in orders only after boot targets")
            return
        if section == "Install":
            for target in value.split():
                if target != "multi-user.target":
                    raise NotUnderstood(f"{where}: the stand-in boots to multi-user.target only")
                self.wanted_by.append(target)
            return
        if key == "Type":
            if value != "simple":
                raise NotUnderstood(f"{where}: only Type=simple")
        elif key == "Environment":
            try:
                words = shlex.split(value)
            except ValueError as exc:
                raise NotUnderstood(f"{where}: {exc}") from exc
            env = {}
            for word in words:
                name, eq, val = word.partition("=")
                if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise NotUnderstood(f"{where}: {word!r} is not NAME=VALUE")
                env[name] = val
            self.environment.append(("env", env))
        elif key == "EnvironmentFile":
            optional = value.startswith("-")
            path = value[1:] if optional else value
            if not path.startswith("/"):
                raise NotUnderstood(f"{where}: not an absolute path")
            self.environment.append(("file", path, optional))
        elif key == "ExecStart":
            if self.exec_start is not None:
                raise NotUnderstood(f"{where}: a second ExecStart= (Type=simple has one)")
            if value[:1] in "@-:+!":
                raise NotUnderstood(f"{where}: ExecStart prefixes are not supported")
            if re.search(r"%[^%]", value.replace("%%", "")):
                raise NotUnderstood(f"{where}: % specifiers are not supported")
            try:
                words = shlex.split(value.replace("%%", "%"))
            except ValueError as exc:
                raise NotUnderstood(f"{where}: {exc}") from exc
            if not words or not words[0].startswith("/"):
                raise NotUnderstood(f"{where}: the command must be an absolute path")
            for word in words:
                if "$" in word and not re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", word) and \
                        re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", "", word).count("$"):
                    raise NotUnderstood(f"{where}: {word!r}: use $NAME as a word or ${{NAME}}")
            self.exec_start = words
        elif key in ("StandardOutput", "StandardError"):
            allowed = ("journal", "console", "journal+console", "null") + (("inherit",) if key == "StandardError" else ())
            if value not in allowed:
                raise NotUnderstood(f"{where}: the stand-in knows {', '.join(allowed)}")
            setattr(self, "stdout" if key == "StandardOutput" else "stderr", value)
        elif key == "User":
            if value not in ("root", "0"):
                raise NotUnderstood(f"{where}: services run as root here")
        elif key == "StateDirectory":
            for name in value.split():
                if name.startswith("/") or ".." in name.split("/"):
                    raise NotUnderstood(f"{where}: not a relative directory name")
                self.state_directories.append(name)
        elif key == "StateDirectoryMode":
            if not re.fullmatch(r"0?[0-7]{3,4}", value):
                raise NotUnderstood(f"{where}: not an octal mode")
            self.state_directory_mode = int(value, 8)
        elif key == "Restart":
            if value not in ("no", "on-failure", "always"):
                raise NotUnderstood(f"{where}: only no, on-failure, always")
            self.restart = value
        elif key == "RestartSec":
            self.restart_sec = _timespan(value, where)
        elif key == "TimeoutStopSec":
            self.timeout_stop = _timespan(value, where)
        elif key == "LimitNOFILE":
            if value == "infinity" or not re.fullmatch(r"\d+(:\d+)?", value):
                raise NotUnderstood(f"{where}: a number (or soft:hard) is needed")
            self.limit_nofile = value


_SPAN_UNITS = {"us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "s": 1, "sec": 1, "second": 1, "seconds": 1,
               "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}


def _timespan(value, where):
    """systemd time span ("2s", "1min 30s", "500ms", "30") -> seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", value)
    if not parts or re.sub(r"\s+", "", value) != "".join(n + u for n, u in parts):
        raise NotUnderstood(f"{where}: not a time span")
    total = 0.0
    for number, unit in parts:
        if unit not in _SPAN_UNITS:
            raise NotUnderstood(f"{where}: unknown time unit {unit!r}")
        total += float(number) * _SPAN_UNITS[unit]
    return total


_SHA256_CHECK = re.compile(r'^echo "([0-9a-f]{64})  (/[^"\s]+)" \| sha256sum (?:-c|--check) -$')
_UNIT_NAME = re.compile(r"^[A-Za-z0-9_.@-]+\.service$")


def _absolute(path, where):
    if not isinstance(path, str) or not path.startswith("/") or os.path.normpath(path) != path.rstrip("/") \
            or ".." in path.split("/"):
        raise NotUnderstood(f"{where}: {path!r} is not a normalised absolute path")
    return path


def _parse_curl(args, where):
    """[curl, -fsS, --retry, N, -o, PATH, URL] in any order of those options."""
    step = {"op": "curl", "fail": False, "retries": 0, "out": None, "url": None}
    i = 1
    while i < len(args):
        word = args[i]
        if re.fullmatch(r"-[fsSL]+", word):
            step["fail"] = step["fail"] or "f" in word
        elif word in ("--fail", "--silent", "--show-error", "--location"):
            step["fail"] = step["fail"] or word == "--fail"
        elif word == "--retry" and i + 1 < len(args) and re.fullmatch(r"\d+", args[i + 1]):
            step["retries"] = int(args[i + 1])
            i += 1
        elif word in ("-o", "--output") and i + 1 < len(args):
            step["out"] = _absolute(args[i + 1], where)
            i += 1
        elif not word.startswith("-") and step["url"] is None:
            step["url"] = word
        else:
            raise NotUnderstood(f"{where}: curl argument {word!r} (the stand-in knows -f -s -S -L, --retry N, -o PATH, one URL)")
        i += 1
    if step["out"] is None or step["url"] is None:
        raise NotUnderstood(f"{where}: curl needs -o PATH and a URL")
    url = urllib.parse.urlsplit(step["url"])
    if url.scheme not in ("http", "https") or not url.hostname:
        raise NotUnderstood(f"{where}: {step['url']!r} is not an http(s) URL")
    if not _is_loopback(url.hostname):
        raise NotUnderstood(f"{where}: {url.hostname!r} is not a loopback host; the test world downloads only "
                            "from itself (its S3 through the fault proxy)")
    return step


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_runcmd(runcmd, written):
    if not isinstance(runcmd, list):
        raise NotUnderstood("runcmd: not a list")
    steps = []
    for index, item in enumerate(runcmd):
        where = f"runcmd[{index}]"
        if index == 0:
            # cloud-init runs runcmd as one sh script without -e: a failed
            # checksum would not stop the daemon from starting.
            if item != "set -e":
                raise NotUnderstood(f"{where}: the contract starts runcmd with 'set -e' (got {item!r})")
            continue
        if not isinstance(item, list) or not item or not all(isinstance(w, str) for w in item):
            raise NotUnderstood(f"{where}: {item!r} (the stand-in runs only list forms after 'set -e')")
        if item[0] == "curl":
            steps.append(_parse_curl(item, where))
        elif item[:2] == ["sh", "-c"] and len(item) == 3 and _SHA256_CHECK.match(item[2]):
            digest, path = _SHA256_CHECK.match(item[2]).groups()
            steps.append({"op": "sha256", "digest": digest, "path": _absolute(path, where)})
        elif item[0] == "chmod" and len(item) == 3 and re.fullmatch(r"0?[0-7]{3,4}", item[1]):
            steps.append({"op": "chmod", "mode": int(item[1], 8), "path": _absolute(item[2], where)})
        elif item == ["systemctl", "daemon-reload"]:
            steps.append({"op": "daemon-reload"})
        elif item[:3] == ["systemctl", "enable", "--now"] and len(item) == 4 and _UNIT_NAME.match(item[3]):
            path = "/etc/systemd/system/" + item[3]
            if path not in written:
                raise NotUnderstood(f"{where}: unit {item[3]} is not among write_files ({path})")
            steps.append({"op": "enable-now", "unit": item[3], "path": path})
        else:
            raise NotUnderstood(f"{where}: {item!r} is not a command form the stand-in runs (curl, "
                                "sh -c 'echo \"<sha256>  <path>\" | sha256sum -c -', chmod, systemctl daemon-reload, "
                                "systemctl enable --now <unit>.service)")
    return steps


def _parse_write_files(entries):
    if not isinstance(entries, list):
        raise NotUnderstood("write_files: not a list")
    files = []
    for index, entry in enumerate(entries):
        where = f"write_files[{index}]"
        if not isinstance(entry, dict):
            raise NotUnderstood(f"{where}: not a mapping")
        unknown = set(entry) - {"path", "content", "permissions", "encoding", "owner", "append", "defer"}
        if unknown:
            raise NotUnderstood(f"{where}: keys {sorted(unknown)}")
        path = _absolute(entry.get("path"), where + ".path")
        content = entry.get("content", "")
        if not isinstance(content, str):
            raise NotUnderstood(f"{where}.content: not a string")
        encoding = entry.get("encoding", "text/plain")
        if encoding in ("b64", "base64"):
            try:
                data = base64.b64decode(content, validate=True)
            except ValueError as exc:
                raise NotUnderstood(f"{where}.content: not base64 ({exc})") from exc
        elif encoding == "text/plain":
            data = content.encode()
        else:
            raise NotUnderstood(f"{where}.encoding: {encoding!r} (the stand-in knows text/plain, b64)")
        permissions = entry.get("permissions", "0644")
        if isinstance(permissions, int) and not isinstance(permissions, bool):
            mode = permissions
        elif isinstance(permissions, str) and re.fullmatch(r"0?[0-7]{3,4}", permissions):
            mode = int(permissions, 8)
        else:
            raise NotUnderstood(f"{where}.permissions: {permissions!r} is not an octal mode")
        if entry.get("owner", "root:root") not in ("root:root", "root"):
            raise NotUnderstood(f"{where}.owner: {entry['owner']!r} (files belong to root here)")
        if entry.get("append", False) is not False or entry.get("defer", False) is not False:
            raise NotUnderstood(f"{where}: append and defer are not supported")
        files.append({"path": path, "data": data, "mode": mode})
    return files


# The two per-boot forms of the contract's bootcmd (deploy/README.md): install
# a binary of another digest (downloaded beside it, verified, renamed over
# it), and rewrite a file that exists (the client CA).
_UPGRADE = re.compile(
    r"""^if \[ -e (?P<path>/[^\s'"]+) \] && ! echo "(?P<digest>[0-9a-f]{64})  (?P=path)" \| sha256sum --check --status -; """
    r"""then curl -fsS --retry (?P<retries>\d+) -o (?P=path)\.new '(?P<url>[^'\s]+)' && """
    r"""echo "(?P=digest)  (?P=path)\.new" \| sha256sum -c - && chmod (?P<mode>0?[0-7]{3,4}) (?P=path)\.new && """
    r"""mv -f (?P=path)\.new (?P=path); fi$""")
_WRITE_IF_EXISTS = re.compile(
    r"""^if \[ -e (?P<path>/[^\s'"]+) \]; then printf '%s' '(?P<content>[^']*)' > (?P=path); fi$""", re.S)


def _parse_bootcmd(items):
    if not isinstance(items, list):
        raise NotUnderstood("bootcmd: not a list")
    steps = []
    for index, item in enumerate(items):
        where = f"bootcmd[{index}]"
        if not (isinstance(item, list) and len(item) == 3 and item[:2] == ["sh", "-c"] and isinstance(item[2], str)):
            raise NotUnderstood(f"{where}: {item!r} (the stand-in runs only the contract's two sh -c forms)")
        upgrade, write = _UPGRADE.match(item[2]), _WRITE_IF_EXISTS.match(item[2])
        if upgrade:
            path = _absolute(upgrade["path"], where)
            curl = _parse_curl(["curl", "-fsS", "--retry", upgrade["retries"], "-o", path + ".new", upgrade["url"]], where)
            steps.append({"op": "upgrade", "path": path, "digest": upgrade["digest"], "mode": int(upgrade["mode"], 8),
                          "curl": curl})
        elif write:
            steps.append({"op": "write-if-exists", "path": _absolute(write["path"], where),
                          "data": write["content"].encode()})
        else:
            raise NotUnderstood(f"{where}: {item[2][:120]!r} is not one of the contract's per-boot forms "
                                "(install a binary of another digest; rewrite the client CA)")
    return steps


class Bootstrap:
    """A cloud-config the stand-in understands, parsed: what to write, which
    packages are wanted, the runcmd steps, the units among the files, and
    the bootcmd steps (which run at every boot)."""

    KEYS = ("packages", "write_files", "runcmd", "bootcmd")

    def __init__(self, text, architecture):
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise NotUnderstood(f"cloud-config is not YAML: {exc}") from exc
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise NotUnderstood("cloud-config is not a mapping")
        unknown = set(config) - set(self.KEYS)
        if unknown:
            raise NotUnderstood(f"cloud-config keys {sorted(unknown)} (the stand-in knows {', '.join(self.KEYS)})")
        packages = config.get("packages", [])
        if not isinstance(packages, list):
            raise NotUnderstood("packages: not a list")
        for package in packages:
            if package not in DEBIAN_PACKAGES:
                raise NotUnderstood(f"packages: {package!r} is not among the packages deploy/README.md lists")
            built_for = _PACKAGE_ARCHITECTURES.get(package)
            if built_for and architecture not in built_for:
                raise NotUnderstood(f"packages: Debian has no {package} for {architecture} (only {', '.join(built_for)}); "
                                    "apt-get would install none of the packages")
        self.packages = packages
        self.files = _parse_write_files(config.get("write_files", []))
        written = {f["path"]: f for f in self.files}
        self.steps = _parse_runcmd(config.get("runcmd", []), written) if "runcmd" in config else []
        self.bootcmd = _parse_bootcmd(config.get("bootcmd", []))
        self.units = {}
        ports = []
        for step in self.steps:
            if step["op"] == "enable-now":
                unit = Unit(step["unit"], written[step["path"]]["data"].decode("utf-8", "replace"))
                self.units[step["unit"]] = unit

                def read(path):
                    return written[path]["data"].decode("utf-8", "replace") if path in written else None

                words = expand_command(unit, unit_environment(unit, read))
                for word in words:
                    if word.split("=", 1)[0] in ("--local-devices", "-local-devices"):
                        raise NotUnderstood(f"unit {unit.name}: its command line has --local-devices; the test world adds it")
                ports.append(listen_port(words, unit.name))
        self.port = ports[0] if ports else None


def unit_environment(unit, read):
    """The unit's Environment= and EnvironmentFile= (read(path) gives a
    file's text, None when it does not exist), in order, as systemd merges
    them."""
    env = {}
    for item in unit.environment:
        if item[0] == "env":
            env.update(item[1])
            continue
        _, path, optional = item
        text = read(path)
        if text is None:
            if not optional:
                raise NotUnderstood(f"unit {unit.name}: Failed to load environment files: {path} does not exist")
            continue
        env.update(parse_environment_file(text, path))
    return env


def expand_command(unit, env):
    """ExecStart with $NAME (a word of its own: split at whitespace) and
    ${NAME} (inside a word: one word) expanded as systemd does."""
    words = []
    for word in unit.exec_start:
        if re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", word):
            words.extend(env.get(word[1:], "").split())
        else:
            words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
    return words


def listen_port(words, unit_name):
    """The port of the last --listen (the daemon's flags: the last wins)."""
    port = None
    for i, word in enumerate(words):
        value = None
        if word in ("--listen", "-listen") and i + 1 < len(words):
            value = words[i + 1]
        elif word.startswith(("--listen=", "-listen=")):
            value = word.split("=", 1)[1]
        if value is not None:
            _, colon, number = value.rpartition(":")
            if not colon or not number.isdigit():
                raise NotUnderstood(f"unit {unit_name}: --listen {value!r} is not [HOST]:PORT")
            port = int(number)
    if port is None:
        raise NotUnderstood(f"unit {unit_name}: its command line has no --listen (the stand-in must know the port "
                            "to give the daemon an address of its own)")
    return port


def parse_environment_file(text, path):
    """systemd EnvironmentFile=: NAME=VALUE lines, # and ; comments, values
    optionally in single or double quotes."""
    env = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name, eq, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise NotUnderstood(f"{path} line {number}: {raw!r} is not NAME=VALUE")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = re.sub(r"\\(.)", r"\1", value)
        env[name] = value
    return env
