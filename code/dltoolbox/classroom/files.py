"""The grader's own files, handled through folder descriptors that never follow a symbolic link.

Every path below a folder the grader was given (the submissions, the gradebook, a scratch folder) is
opened one name at a time, relative to the folder before it and refusing links, so no name a student
chose can send the grader elsewhere, and no path is ever too long to open (the kernel's 4,096-byte
limit applies to one call, not to a chain of folders). Clean-up and the walk over the submissions
are loops, not recursion: a tree thousands of folders deep is removed or walked like a flat one.
Names that are not valid UTF-8, or are too long for a file name once escaped, are shown escaped.
"""
import hashlib
import os
import stat
from pathlib import Path

FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 32      # folders below the submissions folder that the walk enters
MAX_NAME = 200      # bytes of a file name the grader writes (the system allows 255)


def shown(name):
    """`name` (as the system gave it, or any text) as valid UTF-8 text: bytes that are not UTF-8 become \\xNN."""
    if isinstance(name, (bytes, bytearray)):
        return bytes(name).decode("utf-8", errors="backslashreplace")
    try:
        return os.fsencode(name).decode("utf-8", errors="backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file name gave
        return name.encode("utf-8", errors="backslashreplace").decode("utf-8")


def file_name(name):
    """A file name to write for `name`: escaped as :func:`shown`, and cut (with a digest) past MAX_NAME bytes."""
    text = shown(name).replace("/", "_")
    if text in ("", ".", ".."):
        text = f"_{text}_"
    data = text.encode("utf-8")
    if len(data) <= MAX_NAME:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return data[:MAX_NAME - 14].decode("utf-8", errors="ignore") + "…" + digest


def open_folder(root, parts=(), create=False, dir_fd=None):
    """A descriptor of folder `root`/`parts` (each part one name), never through a symbolic link."""
    fd = os.open(root, FOLDER, dir_fd=dir_fd)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            child = os.open(part, FOLDER, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path, limit, dir_fd=None):
    """The text of a regular file (never through a symbolic link), or None; larger than `limit` is an error."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        if info.st_size > limit:
            raise ValueError(f"the file is larger than {limit >> 20} MB")
        return f.read(limit + 1).decode("utf-8", errors="replace")


def read_under(root, parts, limit):
    """The text of the regular file `root`/`parts` (never through a link), or None; past `limit` bytes an error."""
    try:
        folder = open_folder(root, parts[:-1])
    except OSError:
        return None
    try:
        return read_regular(parts[-1], limit, dir_fd=folder)
    finally:
        os.close(folder)


def write_under(root, parts, data):
    """Write `root`/`parts` by renaming a new file over it, creating folders; never through a symbolic link."""
    Path(root).mkdir(parents=True, exist_ok=True)
    folder = open_folder(root, parts[:-1], create=True)
    tmp = f".new-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=folder)
            except OSError:
                pass
            raise
    finally:
        os.close(folder)


def remove_tree(path):
    """Remove folder `path` and all below it, however deep, without following a link; a missing one is fine.

    One folder is open at a time: it goes down to a folder without subfolders, empties and removes it,
    and goes back up (by ".." of the folder it holds, not by a path), so depth costs neither stack nor
    descriptors."""
    try:
        fd = os.open(path, FOLDER)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        os.unlink(path)
        return
    names = []
    try:
        while True:
            child = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    try:
                        os.unlink(entry.name, dir_fd=fd)
                    except FileNotFoundError:
                        pass
            if child is not None:
                try:
                    new = os.open(child, FOLDER, dir_fd=fd)
                except PermissionError:  # a folder its owner made unreadable (root is never refused)
                    os.chmod(child, 0o700, dir_fd=fd)
                    new = os.open(child, FOLDER, dir_fd=fd)
                os.close(fd)
                fd, names = new, names + [child]
                continue
            if not names:
                break
            parent = os.open("..", FOLDER, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def walk(root, suffix=".ipynb", max_depth=MAX_DEPTH):
    """(parts, problem or None) of each file ending in `suffix` below `root`, and of what is not walked (a
    link, a folder nested deeper than `max_depth`, one that cannot be read), sorted by bytes; a loop that
    never follows a link. `parts` are the names as the system gave them (see :func:`shown`)."""
    found, todo = [], [()]
    top = os.open(root, FOLDER)
    try:
        while todo:
            parts = todo.pop()
            try:
                fd = open_folder(".", parts, dir_fd=top)
            except OSError as error:
                found.append((parts, f"the folder could not be read ({os.strerror(error.errno)}); not graded"))
                continue
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        here = parts + (entry.name,)
                        if entry.is_symlink():
                            if entry.name.endswith(suffix):
                                found.append((here, "the submission is a symbolic link; it was not read or graded"))
                            elif _is_folder(entry.name, fd):
                                found.append((here, "the folder is a symbolic link; not graded"))
                        elif entry.is_dir(follow_symlinks=False):
                            if entry.name in (".ipynb_checkpoints", "__pycache__"):
                                continue
                            if len(here) > max_depth:
                                found.append((here, f"the folder is nested more than {max_depth} folders deep; "
                                                    "nothing in it was graded"))
                            else:
                                todo.append(here)
                        elif entry.name.endswith(suffix):
                            why = None if entry.is_file(follow_symlinks=False) else \
                                "the submission is not a regular file; not graded"
                            found.append((here, why))
            except OSError as error:
                found.append((parts, f"the folder could not be read ({os.strerror(error.errno)}); not graded"))
            finally:
                os.close(fd)
    finally:
        os.close(top)
    return sorted(found, key=lambda item: [os.fsencode(p) for p in item[0]])


def _is_folder(name, dir_fd):
    """Whether the link `name` points to a folder (its target is looked at, never opened)."""
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False
