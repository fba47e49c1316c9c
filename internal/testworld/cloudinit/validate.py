"""Validates a cloud-config user-data file the way Debian 12's cloud-init does.

Usage: python3 -I -S validate.py DIST_PACKAGES USER_DATA

DIST_PACKAGES holds cloud-init and its Python imports, unpacked from Debian's
packages (scripts/cloud-init-schema). First it runs cloud-init's own
`cloud-init schema --config-file USER_DATA`, unchanged. Then it refuses
top-level keys that cloud-init's schema does not describe: cloud-init 22.4's
schema allows any top-level key, and cloud-init ignores one it does not know
without a word, so a misspelt `runcmds:` would pass its validation and leave
an instance without its daemon.

Exit status 0: valid; 1: invalid (the reasons on stderr); 2: the validator
itself could not run.
"""

import difflib
import sys


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    dist, path = sys.argv[1], sys.argv[2]
    if sys.version_info[:2] != (3, 11):
        print(
            "validate.py: Debian 12's cloud-init packages are built for "
            "Python 3.11, this is %s (%s)" % (sys.version.split()[0], sys.executable),
            file=sys.stderr,
        )
        return 2
    sys.path.insert(0, dist)
    try:
        from cloudinit.cmd.main import main as cloud_init
        from cloudinit.config.schema import get_schema
        from cloudinit import safeyaml
    except ImportError as e:
        print("validate.py: cannot import cloud-init from %s: %s" % (dist, e), file=sys.stderr)
        return 2

    try:
        rc = cloud_init(["cloud-init", "schema", "--config-file", path])
    except SystemExit as e:
        rc = e.code
    if rc not in (0, None):
        return 1

    schema = get_schema()
    known = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        ref = part.get("$ref", "")
        if ref.startswith("#/$defs/"):
            known |= set(schema["$defs"][ref[len("#/$defs/"):]].get("properties", {}))
    if not known:
        print("validate.py: cloud-init's schema names no top-level keys", file=sys.stderr)
        return 2
    with open(path, "rb") as f:
        config = safeyaml.load(f.read())
    if not isinstance(config, dict):
        print("Error: user-data is not a mapping but %s" % type(config).__name__, file=sys.stderr)
        return 1
    unknown = sorted(str(k) for k in config if k not in known)
    for key in unknown:
        hint = difflib.get_close_matches(key, sorted(known), n=1)
        print(
            "Error: top-level key %r is not in cloud-init %s's schema: cloud-init "
            "would ignore it without a word%s"
            % (key, cloud_init_version(), "; did you mean %r?" % hint[0] if hint else ""),
            file=sys.stderr,
        )
    return 1 if unknown else 0


def cloud_init_version():
    from cloudinit import version

    return version.version_string()


if __name__ == "__main__":
    sys.exit(main())
