#!/usr/bin/env python3
"""Turn a serial-log capture of the VM lab probe (@@DUMP sections with
@@FILE/@@LINK lines) into fixture trees: <out>/vm-<name>/{proc,sys}.

The md directories are written where the kernel has them
(sys/devices/virtual/block/mdX/md) with sys/block/mdX as a relative link, so
the dev-*/block links keep their real relative targets."""
import ast, os, sys

def main(capture, out):
    section, tree = None, None
    lines = open(capture, encoding="utf-8", errors="replace").read().replace("\r", "").split("\n")
    i = 0
    while i < len(lines):
        l = lines[i]
        if l.startswith("@@DUMP "):
            section = l.split()[1]
            tree = os.path.join(out, "vm-" + section)
        elif l.startswith(("@@DONE", "@@STATE")):
            section = None
        elif section and l == "@@DUMPFILE /proc/mdstat":
            body = []
            i += 1
            while lines[i] != "@@DUMPEND":
                body.append(lines[i]); i += 1
            write(os.path.join(tree, "proc/mdstat"), "\n".join(body) + "\n")
        elif section and l.startswith("@@FILE "):
            path, _, val = l[len("@@FILE "):].partition(" = ")
            if os.path.basename(path) not in KEEP:
                i += 1
                continue
            write(os.path.join(tree, real(path)), ast.literal_eval(val) + "\n")
        elif section and l.startswith("@@LINK "):
            rest = l[len("@@LINK "):]
            path, _, rest = rest.partition(" -> ")
            target, _, resolved = rest.partition(" => ")
            partition = resolved.endswith(" partition")
            resolved = resolved.removesuffix(" partition")
            link = os.path.join(tree, real(path))
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if not os.path.lexists(link):
                os.symlink(target, link)
            if resolved.startswith("/sys/devices/pci"):
                d = os.path.join(tree, resolved.lstrip("/"))
                os.makedirs(d, exist_ok=True)
                if partition:
                    write(os.path.join(d, "partition"), "1\n")
        i += 1
    for name in os.listdir(out):
        blk = os.path.join(out, name, "sys/devices/virtual/block")
        if not os.path.isdir(blk):
            continue
        for md in os.listdir(blk):
            link = os.path.join(out, name, "sys/block", md)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if not os.path.lexists(link):
                os.symlink("../devices/virtual/block/" + md, link)

# The md attributes a reader may use (Documentation/admin-guide/md.rst);
# the rest of the dump (bitmap/, queue settings, ...) is left out.
KEEP = {"level", "array_state", "raid_disks", "layout", "chunk_size", "sync_action", "sync_completed",
        "sync_speed", "mismatch_cnt", "degraded", "metadata_version", "uuid", "state", "slot", "errors",
        "recovery_start", "component_size"}

def real(path):
    # /sys/block/md0/md/x -> sys/devices/virtual/block/md0/md/x
    p = path.lstrip("/").split("/")
    if p[:2] == ["sys", "block"]:
        p = ["sys", "devices", "virtual", "block"] + p[2:]
    return "/".join(p)

def write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(content)

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
