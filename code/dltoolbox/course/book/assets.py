"""The scripts the built book would otherwise fetch from CDNs, served from the book itself.

MathJax (equations), RequireJS and the ipywidgets HTML manager (widgets in the static pages) are taken
from the npm registry at build time, pinned by version and SHA-256, and unpacked into ``_vendor/`` at
the repository root (not committed). The Sphinx extension adds that folder to ``html_static_path``, so
its files land in ``_build/html/_static/`` next to the theme's and a page needs no network:

    python -m dltoolbox.course.book.assets          # fetch (the book build does this itself when missing)

``_config.yml`` points Sphinx's ``mathjax_path`` and myst-nb's ``nb_ipywidgets_js`` at these files. The
folder is not under the book's ``_static/``, whose scripts Jupyter Book would add to every page.
"""
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path, PurePosixPath

REGISTRY = "https://registry.npmjs.org"
# name -> (npm package, version, SHA-256 of its tarball, folders of the package to keep, licence)
PACKAGES = {
    "mathjax": ("mathjax", "3.2.2", "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
                ["es5/"], "Apache-2.0"),
    "requirejs": ("requirejs", "2.3.7", "31f3330c978fb28684622fe71165dc946432cf0210b2ea8a1ca0233e70f2737d",
                  ["require.js"], "MIT"),
    "html-manager": ("@jupyter-widgets/html-manager", "1.0.15",
                     "2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638", ["dist/"], "BSD-3-Clause"),
}
MARKER = ".version"


def tarball_url(package, version):
    """The registry address of an npm package's tarball (scoped names keep their scope in the path)."""
    base = package.rsplit("/", 1)[-1]
    return f"{REGISTRY}/{package}/-/{base}-{version}.tgz"


def unpack(data, keep, dest):
    """Extract the members of an npm tarball under `keep` into `dest`, with its LICENSE (where it has one) and
    package.json (which names its licence); refuse paths outside the package."""
    dest = Path(dest)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            path = PurePosixPath(member.name)
            if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != "package":
                raise ValueError(f"unsafe path in the package: {member.name!r}")
            inner = PurePosixPath(*path.parts[1:])
            wanted = str(inner) in ("LICENSE", "package.json") or any(str(inner) == k or str(inner).startswith(k)
                                                                       for k in keep)
            if not wanted or not member.isfile():
                continue
            target = dest.joinpath(*inner.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extractfile(member).read())


def fetch(dest, packages=PACKAGES, download=None):
    """Put every package into dest/<name>/, downloading only what is missing or of another version.

    `download(url) -> bytes` defaults to urllib. A tarball whose SHA-256 differs from the pinned one is
    an error, never unpacked. Returns the names fetched now.
    """
    download = download or (lambda url: urllib.request.urlopen(url, timeout=60).read())
    dest = Path(dest)
    fetched = []
    for name, (package, version, digest, keep, _licence) in packages.items():
        folder = dest / name
        marker = folder / MARKER
        if marker.is_file() and marker.read_text().strip() == f"{package}@{version}":
            continue
        url = tarball_url(package, version)
        try:
            data = download(url)
        except OSError as error:
            raise RuntimeError(f"could not download {url} ({error}); the book needs it to work offline. "
                               "Run `python -m dltoolbox.course.book.assets` where the npm registry is reachable") from error
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"{url}: SHA-256 {hashlib.sha256(data).hexdigest()} is not the pinned {digest}")
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        unpack(data, keep, folder)
        marker.write_text(f"{package}@{version}\n")
        fetched.append(name)
    return fetched


def main(argv=None):
    from ...locations import checkout_path

    dest = Path(argv[0]) if argv else checkout_path("_vendor")
    fetched = fetch(dest)
    print(f"{dest}: " + (f"fetched {', '.join(fetched)}" if fetched else "up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
