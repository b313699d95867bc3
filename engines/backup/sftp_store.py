"""A repository store on an SSH host, over SFTP (asyncssh), for off-site backups.

The connection takes what OpenSSH's client would: ``~/.ssh/config`` (Host, HostName, User, Port,
IdentityFile, UserKnownHostsFile), the default keys and ``~/.ssh/known_hosts``; ``key_file``
(``--ssh-key``) names the private key instead. A host whose key is not in ``known_hosts`` is
refused: accepting a key is the user's act (``ssh-keyscan``, then check the fingerprint).

Uploads (``put``, ``replace``, ``put_directory``) write ``.tmp/upload/<name>.<sha256 prefix>``,
ask the server to fsync it (``fsync@openssh.com``, when it offers it), read the file back and
compare its SHA-256 with the local one, and only then rename it into place. The temp name depends
on the content, so when the link drops (or the process dies) the next attempt finds the temp,
checks the part already there against the local bytes and sends only the rest. Link failures are
retried on a new connection a few times with backoff; what still fails is a ``RepositoryError``
(exit 3) naming the host.

asyncssh is asynchronous and the backup code is not: each store runs its own event loop on a
private thread and every operation is handed to it and waited for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import posixpath
import re
import shlex
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncssh

from engines.backup.checksums import sha256_file
from engines.backup.errors import ArchiveConflictError, BackupCorruptionError, RepositoryError
from engines.backup.location import SftpLocation
from engines.backup.store import UPLOAD_DIR, StoredFile, same_bytes_or_conflict

if TYPE_CHECKING:
    from engines.backup.sftp_stream import ArchiveUpload

__all__ = ["SftpStore", "ProgressHook"]

T = TypeVar("T")
ProgressHook = Callable[[str, int, int], None]
"""Called as (path, bytes written so far, total) after each chunk of an upload."""

CHUNK = 32 * 1024 * 1024
SERVER_HASH_BYTES = 4 * 1024 * 1024
"""Below this, reading a file back costs less than opening a channel to have the server hash it."""
READ_CHUNK = 4 * 1024 * 1024
ATTEMPTS = 5
CONNECT_TIMEOUT = 15.0
# AES-GCM first: with AES-NI it is several times cheaper per byte than asyncssh's default
# chacha20-poly1305, and the client's CPU bounds an upload on a fast link.
CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes128-ctr",
]
_UNRECOVERABLE = (asyncssh.HostKeyNotVerifiable, asyncssh.PermissionDenied)
_LINK_ERRORS = (
    asyncssh.DisconnectError,
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,  # the link died under an earlier operation (a streamed upload's)
    asyncssh.ChannelOpenError,
    ConnectionError,
    asyncio.TimeoutError,
    OSError,
)


class SftpStore:
    """A repository directory on an SSH host (see the module docstring)."""

    def __init__(
        self,
        location: SftpLocation,
        *,
        key_file: Path | None = None,
        progress: ProgressHook | None = None,
        attempts: int = ATTEMPTS,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.location = location
        self.description = location.url
        self.key_file = key_file
        self.progress = progress
        self.attempts = attempts
        self.connect_timeout = connect_timeout
        self.resumed: list[tuple[str, int]] = []
        """(path, offset) of every upload that went on from a temp an earlier attempt left."""
        self.fsync_supported: bool | None = None
        self.streamed: dict[str, tuple[int, str, concurrent.futures.Future[str]]] = {}
        """Each file an ``ArchiveUpload`` wrote whole, by path (sftp_stream.py): its size, its SHA-256
        and the read-back of its stored SHA-256, started as soon as it was written."""
        self._append_only: bool | None = None
        self.server_hash: bool | None = None
        """Whether the server hashes files itself (``sha256sum``); False: they are read back over SFTP."""
        self._connection: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="drconsole-sftp", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ plumbing
    def _remote(self, path: str) -> str:
        return posixpath.join(self.location.path, path) if path else self.location.path

    async def _client(self) -> asyncssh.SFTPClient:
        if self._sftp is None:
            options: dict[str, Any] = {
                "connect_timeout": self.connect_timeout,
                "keepalive_interval": 10,
                "keepalive_count_max": 3,
                "encryption_algs": CIPHERS,
            }
            if self.location.port:
                options["port"] = self.location.port
            if self.location.user:
                options["username"] = self.location.user
            if self.key_file is not None:
                options["client_keys"] = [str(self.key_file)]
            self._connection = await asyncssh.connect(self.location.host, **options)
            self._sftp = await self._connection.start_sftp_client()
        return self._sftp

    async def _disconnect(self) -> None:
        connection, self._connection, self._sftp = self._connection, None, None
        if connection is not None:
            connection.abort()

    def _run(self, operation: Callable[[asyncssh.SFTPClient], Awaitable[T]], what: str) -> T:
        """Run ``operation`` on the store's loop; on a dropped link, reconnect and run it again."""

        async def attempt() -> T:
            return await operation(await self._client())

        delay, last = 0.2, None
        for number in range(self.attempts):
            try:
                return asyncio.run_coroutine_threadsafe(attempt(), self._loop).result()
            except _UNRECOVERABLE as exc:
                self._call(self._disconnect())
                raise self._refused(exc) from exc
            except asyncssh.SFTPPermissionDenied as exc:
                raise RepositoryError(
                    f"{self.description}: {what}: permission denied ({exc.reason})",
                    hint="the SFTP account may not do this (an append-only account "
                    "cannot delete or rename: prune on the repository host)",
                ) from exc
            except _LINK_ERRORS as exc:  # before SFTPError: its connection-lost subclasses are link errors
                last = exc
                self._call(self._disconnect())
                if number + 1 < self.attempts:
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
            except asyncssh.SFTPError as exc:
                raise RepositoryError(f"{self.description}: {what} failed: {exc.reason}") from exc
        raise RepositoryError(
            f"{self.description}: {what} failed after {self.attempts} attempts: {last}",
            hint="check that the host is reachable (`ssh` with the same user, port and key)",
        )

    def _call(self, coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()  # type: ignore[arg-type]

    # The plumbing an ArchiveUpload (sftp_stream.py) drives from the packer's writer thread.
    call = _call
    client = _client
    remote = _remote

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def stored_sha256_soon(self, path: str) -> concurrent.futures.Future[str]:
        """Start reading back the SHA-256 of ``path`` as stored; the future of its hex digest."""

        async def digest() -> str:
            return await self._stored_sha256(await self._client(), self._remote(path))

        return asyncio.run_coroutine_threadsafe(digest(), self._loop)

    def open_stream(self, path: str) -> ArchiveUpload | None:
        """An upload of ``path`` fed while it is written; None where the store needs the whole file first."""
        if self.append_only:
            return None  # write-once files go to their final names, known only at publish time
        from engines.backup.sftp_stream import ArchiveUpload

        upload = ArchiveUpload(self, path)
        return None if upload.error is not None else upload

    def _refused(self, exc: Exception) -> RepositoryError:
        where = self.location.host + (f" -p {self.location.port}" if self.location.port else "")
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            return RepositoryError(
                f"{self.description}: the host key of {self.location.host} is not a known one "
                f"({exc.reason}); refusing to connect",
                hint=f"if the host is the right one, add its key: ssh-keyscan {where} >> "
                "~/.ssh/known_hosts (check the fingerprint out of band)",
            )
        return RepositoryError(
            f"{self.description}: the server refused our key ({exc})",
            hint="give the key with --ssh-key FILE or IdentityFile in ~/.ssh/config",
        )

    # ------------------------------------------------------------------ reading
    def exists(self) -> bool:
        async def check(sftp: asyncssh.SFTPClient) -> bool:
            return bool(await sftp.isdir(self._remote("")))

        return self._run(check, "looking for the repository")

    def files(self, under: str = "") -> list[StoredFile]:
        async def walk(sftp: asyncssh.SFTPClient) -> list[StoredFile]:
            found: list[StoredFile] = []
            pending = [under]
            while pending:
                folder = pending.pop()
                try:
                    names = await sftp.readdir(self._remote(folder))
                except asyncssh.SFTPNoSuchFile:
                    continue
                for name in names:
                    if name.filename in (".", ".."):
                        continue
                    relative = posixpath.join(folder, str(name.filename)) if folder else str(name.filename)
                    if name.attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
                        pending.append(relative)
                    elif name.attrs.type == asyncssh.FILEXFER_TYPE_REGULAR:
                        found.append(StoredFile(relative, int(name.attrs.size or 0)))
            return sorted(found, key=lambda item: item.path)

        return self._run(walk, "listing the repository")

    def fetch(self, path: str, local: Path) -> None:
        async def get(sftp: asyncssh.SFTPClient) -> None:
            local.parent.mkdir(parents=True, exist_ok=True)
            await sftp.get(self._remote(path), str(local))

        self._run(get, f"downloading {path}")

    def sha256(self, path: str) -> str | None:
        async def digest(sftp: asyncssh.SFTPClient) -> str | None:
            try:
                return await self._stored_sha256(sftp, self._remote(path))
            except asyncssh.SFTPNoSuchFile:
                return None

        return self._run(digest, f"reading back {path}")

    async def _stored_sha256(self, sftp: asyncssh.SFTPClient, remote: str) -> str:
        """The SHA-256 of a whole stored file, read back from the server's disk.

        Where the account may run commands, the server reads it (``openssl dgst``, which uses the
        CPU's SHA instructions, else ``sha256sum``: no second trip of the bytes over the link); an
        SFTP-only account (``ForceCommand internal-sftp``) answers that
        with nothing, and the file is read back over SFTP instead (and from then on).
        """
        size = int((await sftp.stat(remote)).size or 0)  # a missing file: SFTPNoSuchFile, whoever hashes
        if self.server_hash is not False and self._connection is not None and size >= SERVER_HASH_BYTES:
            try:
                quoted = shlex.quote(remote if remote.startswith("/") else f"./{remote}")
                command = f"openssl dgst -sha256 -r {quoted} 2>/dev/null || sha256sum -- {quoted}"
                done = await asyncio.wait_for(self._connection.run(command, input="", check=False), 600)
                words = str(done.stdout or "").split()
                if done.exit_status == 0 and words and re.fullmatch(r"[0-9a-f]{64}", words[0]):
                    self.server_hash = True
                    return words[0]
            except (TimeoutError, asyncssh.Error, OSError):
                pass
            self.server_hash = False
        return await self._remote_sha256(sftp, remote)

    async def _remote_sha256(self, sftp: asyncssh.SFTPClient, remote: str, limit: int | None = None) -> str:
        hasher = hashlib.sha256()
        async with sftp.open(remote, "rb") as handle:
            offset = 0
            while limit is None or offset < limit:
                size = READ_CHUNK if limit is None else min(READ_CHUNK, limit - offset)
                data = await handle.read(size, offset)
                assert isinstance(data, bytes)  # opened in binary mode
                if not data:
                    break
                hasher.update(data)
                offset += len(data)
        return hasher.hexdigest()

    # ------------------------------------------------------------------ writing
    @property
    def append_only(self) -> bool:
        """Whether the account may not rename (``internal-sftp -P ...rename...``): then files are
        written straight to their final, write-once names (see ``put``). Found out once, on the
        first write, by renaming a probe file of ours (a fixed name, so probes never pile up)."""
        if self._append_only is None:
            probe = self._remote(f"{UPLOAD_DIR}/rename-probe")

            async def check(sftp: asyncssh.SFTPClient) -> bool:
                await sftp.makedirs(posixpath.dirname(probe), exist_ok=True)
                try:
                    async with sftp.open(probe, "wb"):
                        pass
                    await sftp.posix_rename(probe, probe + ".renamed")
                except (asyncssh.SFTPPermissionDenied, asyncssh.SFTPOpUnsupported, asyncssh.SFTPFailure):
                    return True
                await sftp.remove(probe + ".renamed")
                return False

            self._append_only = self._run(check, "checking what the account may do")
        return self._append_only

    def put(self, local: Path, path: str) -> None:
        """Write-once: temp, fsync, read back, rename; on an append-only account, straight to ``path``
        (resuming a prefix a dropped link left there, refusing any other bytes, read back)."""
        if self.append_only:
            self._upload(local, path, exact=True, write_once=True)
            return
        if same_bytes_or_conflict(self, local, path):
            return
        self._place(self._upload(local, path), path, overwrite=False)

    def replace(self, local: Path, path: str) -> None:
        self._place(self._upload(local, path), path, overwrite=True)

    def _place(self, temp: str, path: str, *, overwrite: bool) -> None:
        """Rename ``temp`` to ``path``: SFTP's rename refuses an existing target, posix-rename replaces it."""
        final = self._remote(path)

        async def place(sftp: asyncssh.SFTPClient) -> None:
            await sftp.makedirs(posixpath.dirname(final), exist_ok=True)
            if overwrite:
                await sftp.posix_rename(temp, final)
            else:
                await sftp.rename(temp, final)

        self._run(place, f"renaming {path} into place")

    def put_directory(self, local: Path, path: str) -> None:
        """Upload every file of ``local`` under a temp directory, then rename it to ``path`` at once.

        On an append-only account the files go straight into ``path``, the metadata last: a backup
        directory without its metadata is one whose upload was cut (listed as unreadable; the
        repository host's prune clears it)."""
        if self.append_only:
            files = sorted(
                (item for item in local.rglob("*") if item.is_file()),
                key=lambda item: (item.name.endswith(".metadata.json"), item.name),
            )
            for file in files:
                self._upload(file, f"{path}/{file.relative_to(local).as_posix()}", exact=True, write_once=True)
            return
        folder = f"{UPLOAD_DIR}/{posixpath.basename(path)}.dir"
        for file in sorted(item for item in local.rglob("*") if item.is_file()):
            relative = file.relative_to(local).as_posix()
            self._upload(file, f"{folder}/{relative}", exact=True)
        parent = posixpath.dirname(self._remote(path))

        async def publish(sftp: asyncssh.SFTPClient) -> None:
            await sftp.makedirs(parent, exist_ok=True)
            await sftp.rename(self._remote(folder), self._remote(path))

        self._run(publish, f"renaming {path} into place")

    def _upload(self, local: Path, path: str, *, exact: bool = False, write_once: bool = False) -> str:
        """Write ``local`` to a temp name (resuming one an earlier attempt left); its remote path.

        ``exact``: write to ``path`` itself. ``write_once``: an existing file there is never cut or
        overwritten: the same bytes are a no-op, a prefix of them is resumed, anything else is refused.
        """
        total = local.stat().st_size
        streamed = self.streamed.pop(path, None) if exact else None
        if streamed is not None and streamed[0] != total:
            streamed = None
        # A streamed file: its digest is the packer's, taken from the very bytes written here and there.
        digest = streamed[1] if streamed is not None else sha256_file(local)
        temp = self._remote(path if exact else f"{UPLOAD_DIR}/{path.replace('/', '%')}.{digest[:16]}")

        async def upload(sftp: asyncssh.SFTPClient) -> None:
            await sftp.makedirs(posixpath.dirname(temp), exist_ok=True)
            if streamed is not None and int((await sftp.stat(temp)).size or 0) == total:
                # Sent whole and fsynced while it was packed, and read back since: nothing else to do.
                try:
                    if await asyncio.wrap_future(streamed[2]) == digest:
                        return
                except (TimeoutError, asyncssh.Error, OSError):
                    pass  # the early read-back failed: check (and resume) the usual way

            offset = await self._resume_offset(sftp, temp, local, total)
            if write_once and offset < 0:
                raise ArchiveConflictError(
                    f"{self.description} already holds a different {path}", hint="a backup file is never overwritten"
                )
            if write_once and offset == total and total and await self._stored_sha256(sftp, temp) == digest:
                return  # already there, whole
            offset = max(offset, 0)
            if offset:
                self.resumed.append((path, offset))
            flags = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | (0 if offset else asyncssh.FXF_TRUNC)
            async with sftp.open(temp, flags, encoding=None) as handle:
                with open(local, "rb") as source:
                    source.seek(offset)
                    while chunk := source.read(CHUNK):
                        await handle.write(chunk, offset)
                        offset += len(chunk)
                        if self.progress is not None:
                            self.progress(path, offset, total)
                await self.fsync_handle(handle)
            if await self._stored_sha256(sftp, temp) != digest:
                if not write_once:
                    await sftp.remove(temp)
                raise BackupCorruptionError(
                    f"{self.description}: {path} read back with other bytes than sent; the upload was discarded",
                    hint="check the remote disk, then retry",
                )

        self._run(upload, f"uploading {path}")
        return temp

    async def _resume_offset(self, sftp: asyncssh.SFTPClient, temp: str, local: Path, total: int) -> int:
        """How much of ``temp`` already holds ``local``'s first bytes: 0 when absent or empty, -1 when
        it holds other bytes (a temp is then started over; a write-once file refused)."""
        try:
            have = int((await sftp.stat(temp)).size or 0)
        except asyncssh.SFTPNoSuchFile:
            return 0
        if have == 0:
            return 0
        if have > total or await self._remote_sha256(sftp, temp, limit=have) != sha256_file(local, limit=have):
            return -1
        return have

    async def fsync_handle(self, handle: asyncssh.SFTPClientFile) -> None:
        if self.fsync_supported is False:
            return
        try:
            await handle.fsync()
            self.fsync_supported = True
        except asyncssh.SFTPOpUnsupported:
            self.fsync_supported = False  # the server's own close is all we get

    def remove(self, path: str) -> None:
        async def remove(sftp: asyncssh.SFTPClient) -> None:
            try:
                await sftp.remove(self._remote(path))
            except asyncssh.SFTPNoSuchFile:
                pass

        self._run(remove, f"removing {path}")

    def remove_directory(self, path: str) -> None:
        """Rename the directory out of sight first (a reader sees it whole or not at all), then delete it."""
        doomed = self._remote(f"{UPLOAD_DIR}/{posixpath.basename(path)}.removing")

        async def remove(sftp: asyncssh.SFTPClient) -> None:
            await sftp.makedirs(posixpath.dirname(doomed), exist_ok=True)
            if await sftp.exists(self._remote(path)):
                if await sftp.exists(doomed):
                    await sftp.rmtree(doomed)
                await sftp.rename(self._remote(path), doomed)
            if await sftp.exists(doomed):
                await sftp.rmtree(doomed)

        self._run(remove, f"removing {path}")

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._call(self._disconnect())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
