#!/usr/bin/env python3
"""Builds tributary's Debian package from a built binary with dpkg-deb alone.

What goes in is read from `[package.metadata.deb]` in Cargo.toml, the one definition
of the package (`cargo deb` reads the same table), and applied as cargo-deb applies
it: `target/release/` in an asset's source means the directory of the binary given,
globs are expanded, a destination ending in `/` is a directory, man pages are
gzipped, the binary is stripped, `$auto` in `depends` is what dpkg-shlibdeps finds,
and the maintainer scripts come from `maintainer-scripts`.

    debian/build-deb.py --binary target/debug/tributary --out target/debian \\
        [--revision 2]

The binary first writes the man pages and completions the assets name
(`tributary generate`). Needs python3 (3.11+), dpkg-deb, and strip (binutils) and
dpkg-shlibdeps (dpkg-dev) when present. Prints the path of the package built.
"""

import argparse
import glob
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, **kwargs):
    return subprocess.run(args, check=True, **kwargs)


def shlib_depends(binary):
    """What `$auto` stands for: the binary's shared libraries as package relations."""
    if shutil.which("dpkg-shlibdeps") is None:
        return "libc6"
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "debian"))
        with open(os.path.join(tmp, "debian", "control"), "w") as control:
            control.write("Source: tributary\n\nPackage: tributary\nArchitecture: any\n")
        out = run("dpkg-shlibdeps", "-O", binary, cwd=tmp, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("shlibs:Depends="):
            return line.split("=", 1)[1]
    return "libc6"


def stage_assets(meta, binary, stage):
    bin_dir = os.path.dirname(os.path.abspath(binary))
    for source, dest, mode in meta["assets"]:
        if source.startswith("target/release/"):
            source = os.path.join(bin_dir, source[len("target/release/") :])
        else:
            source = os.path.join(ROOT, source)
        matches = sorted(glob.glob(source))
        if not matches:
            sys.exit(f"build-deb: no file for asset {source}")
        for path in matches:
            target = os.path.join(stage, dest)
            if dest.endswith("/"):
                target = os.path.join(target, os.path.basename(path))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if dest.startswith("usr/share/man/"):
                target += ".gz"
                with open(path, "rb") as src, open(target, "wb") as out:
                    out.write(gzip.compress(src.read(), 9, mtime=0))
            elif path == os.path.abspath(binary) and shutil.which("strip"):
                run("strip", "--strip-unneeded", "-o", target, path)
            else:
                shutil.copyfile(path, target)
            os.chmod(target, int(mode, 8))


def control_file(meta, cargo, version, arch, depends, installed_kb):
    package = cargo["package"]
    extended = textwrap.fill(
        " ".join(meta["extended-description"].split()),
        width=79,
        initial_indent=" ",
        subsequent_indent=" ",
    )
    return (
        f"Package: {package['name']}\n"
        f"Version: {version}\n"
        f"Architecture: {arch}\n"
        f"Maintainer: {meta['maintainer']}\n"
        f"Installed-Size: {installed_kb}\n"
        f"Depends: {depends}\n"
        f"Section: {meta['section']}\n"
        f"Priority: {meta['priority']}\n"
        f"Description: {package['description']}\n"
        f"{extended}\n"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, "target/release/tributary"))
    parser.add_argument("--out", default=os.path.join(ROOT, "target/debian"))
    parser.add_argument("--revision", default="1", help="Debian revision (default 1)")
    args = parser.parse_args()

    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        cargo = tomllib.load(f)
    meta = cargo["package"]["metadata"]["deb"]
    version = f"{cargo['package']['version']}-{args.revision}"
    arch = run("dpkg", "--print-architecture", capture_output=True, text=True).stdout.strip()

    # The man pages and completions the assets name, afresh.
    for kind, out in (("man", "target/man"), ("completions", "target/completions")):
        shutil.rmtree(os.path.join(ROOT, out), ignore_errors=True)
        run(args.binary, "generate", kind, "--out", os.path.join(ROOT, out))

    with tempfile.TemporaryDirectory() as stage:
        os.chmod(stage, 0o755)
        stage_assets(meta, args.binary, stage)
        # As cargo-deb writes it: the license, machine-readable.
        doc = os.path.join(stage, "usr/share/doc", cargo["package"]["name"])
        os.makedirs(doc, exist_ok=True)
        with open(os.path.join(doc, "copyright"), "w") as f:
            f.write(
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
                f"Upstream-Name: {cargo['package']['name']}\n\n"
                f"Files: *\nCopyright: {meta['maintainer']}\n"
                f"License: {cargo['package']['license']}\n"
            )
        debian = os.path.join(stage, "DEBIAN")
        os.makedirs(debian)
        with open(os.path.join(debian, "conffiles"), "w") as f:
            f.writelines(f"{path}\n" for path in meta["conf-files"])
        scripts = os.path.join(ROOT, meta["maintainer-scripts"])
        for name in ("preinst", "postinst", "prerm", "postrm"):
            path = os.path.join(scripts, name)
            if os.path.exists(path):
                with open(path) as src:
                    # As cargo-deb does without systemd-units: #DEBHELPER# adds nothing.
                    text = src.read().replace("#DEBHELPER#\n", "")
                with open(os.path.join(debian, name), "w") as out:
                    out.write(text)
                os.chmod(os.path.join(debian, name), 0o755)
        sums, size = [], 0
        for dirpath, dirnames, filenames in os.walk(stage):
            dirnames.sort()
            if os.path.samefile(dirpath, debian):
                continue
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    data = f.read()
                size += len(data)
                sums.append(f"{hashlib.md5(data).hexdigest()}  {os.path.relpath(path, stage)}\n")
        with open(os.path.join(debian, "md5sums"), "w") as f:
            f.writelines(sums)
        auto = shlib_depends(os.path.join(stage, "usr/bin/tributary"))
        depends = meta["depends"].replace("$auto", auto)
        with open(os.path.join(debian, "control"), "w") as f:
            f.write(control_file(meta, cargo, version, arch, depends, (size + 1023) // 1024))
        os.makedirs(args.out, exist_ok=True)
        deb = os.path.join(args.out, f"{cargo['package']['name']}_{version}_{arch}.deb")
        run("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", stage, deb, stdout=subprocess.DEVNULL)
    print(deb)


if __name__ == "__main__":
    main()
