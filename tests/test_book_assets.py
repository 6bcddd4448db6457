"""The book's vendored scripts: pinned, checked, unpacked safely, fetched only when missing."""
import hashlib
import io
import tarfile

import pytest

from dltoolbox.course.book import assets


def tarball(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def pinned(data, keep):
    return {"pkg": ("@scope/pkg", "1.2.3", hashlib.sha256(data).hexdigest(), keep, "MIT")}


def test_scoped_and_plain_tarball_addresses():
    assert assets.tarball_url("@jupyter-widgets/html-manager", "1.0.15") == \
        "https://registry.npmjs.org/@jupyter-widgets/html-manager/-/html-manager-1.0.15.tgz"
    assert assets.tarball_url("mathjax", "3.2.2") == "https://registry.npmjs.org/mathjax/-/mathjax-3.2.2.tgz"


def test_fetch_keeps_the_named_folders_and_the_licence_then_skips(tmp_path):
    data = tarball({"package/dist/a.js": b"a", "package/src/b.ts": b"b", "package/LICENSE": b"MIT"})
    calls = []
    download = lambda url: calls.append(url) or data  # noqa: E731
    assert assets.fetch(tmp_path, pinned(data, ["dist/"]), download) == ["pkg"]
    assert (tmp_path / "pkg/dist/a.js").read_bytes() == b"a" and (tmp_path / "pkg/LICENSE").is_file()
    assert not (tmp_path / "pkg/src").exists()
    assert assets.fetch(tmp_path, pinned(data, ["dist/"]), download) == [] and len(calls) == 1


def test_a_tarball_that_is_not_the_pinned_one_is_refused(tmp_path):
    data = tarball({"package/dist/a.js": b"a"})
    packages = pinned(data, ["dist/"])
    with pytest.raises(ValueError, match="SHA-256"):
        assets.fetch(tmp_path, packages, lambda url: data + b"tampered")
    assert not (tmp_path / "pkg").exists()


def test_unsafe_paths_are_refused(tmp_path):
    data = tarball({"package/../../evil.js": b"x"})
    with pytest.raises(ValueError, match="unsafe path"):
        assets.fetch(tmp_path, pinned(data, [""]), lambda url: data)


def test_an_unreachable_registry_is_a_clear_error(tmp_path):
    def offline(url):
        raise OSError("no network")

    with pytest.raises(RuntimeError, match="work offline"):
        assets.fetch(tmp_path, pinned(b"", ["dist/"]), offline)


def test_the_pins_are_the_versions_the_book_config_names():
    assert assets.PACKAGES["html-manager"][1].startswith("1.0.")        # matches ipywidgets 8.1
    assert assets.PACKAGES["mathjax"][1].startswith("3.")
