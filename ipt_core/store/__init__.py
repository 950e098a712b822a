"""Content-addressed result store: tensors in safetensors, metadata in JSON, atomic writes.

Every result (a prompt-tuning run, a probe, a found subspace, ...) is stored under a key that is the
sha256 of the canonical JSON of its ``spec``: everything that decides the result (method,
hyper-parameters, backbone id and weights hash, task data hash, seed, code version). The caller builds
the spec; the store hashes it. Same spec, same key, same result, so a result computed once is reused by
the CLI and browsed by the app.

Layout under the store root (``$IPT_CACHE``, else ``./cache`` in the working directory)::

    objects/<key[:2]>/<key>/entry.json            key, kind, spec, meta, command, created, checksum ...
    objects/<key[:2]>/<key>/tensors.safetensors   only when the entry has tensors
    tmp/w-<host>-<pid>-<uuid>/                    entries being written (never visible); the writer's
                                                  host and pid let a dead writer's leftovers go at once
    corrupt/<key>-<timestamp>/                    entries found corrupt (moved aside, never shown), each
                                                  with quarantine.json: what it was, why, when
    checkpoints/<key>/                            scratch space of resumable runs

A write builds the entry in ``tmp/``, fsyncs it and renames the directory into ``objects/``; readers
(the Streamlit app, other CLI jobs) therefore see a whole entry or none. Every read verifies the JSON
checksum and the sha256 of the tensor file; a corrupt entry is logged, moved to ``corrupt/`` and
reported as absent so that the caller recomputes it: whatever is wrong with it (bad JSON, nesting deep
enough to overflow the parser, a wrong type at any depth of the record, a damaged file). Pickles are
never loaded. A write that fails for any reason (a full disk inside safetensors included) is one
:class:`StoreError` and leaves nothing behind. Temp items of writers killed mid-write are removed the
first time a process opens the store (:meth:`Store.sweep_tmp`); ``python -m ipt_core verify`` checks
everything (:meth:`Store.check`).

Example:
    >>> import tempfile, torch
    >>> store = Store(tempfile.mkdtemp())
    >>> spec = {"method": "pt", "task": "sst2", "seed": 0, "lr": 0.03, "code_version": "pt-1"}
    >>> e = store.put("pt_run", spec, {"acc": 0.81}, {"prompt": torch.zeros(4, 8)},
    ...               command="python -m ipt_core pt --task sst2 --seed 0")
    >>> store.get(spec).meta["acc"], store.get(e.key).tensor("prompt").shape
    (0.81, torch.Size([4, 8]))
    >>> [x.spec["task"] for x in store.query("pt_run", seed=0)]
    ['sst2']

The parts: :mod:`ipt_core.store.keys` (canonical JSON, :func:`spec_key`), :mod:`ipt_core.store.entry`
(the files of one entry, their verification, :class:`Entry`), :mod:`ipt_core.store.tmp` (temp names
and stale leftovers), :mod:`ipt_core.store.quarantine` (what was set aside, for the app),
:mod:`ipt_core.store.atomic` (fsynced writes); this module holds :class:`Store` itself.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ipt_core.errors import InputError
from ipt_core.store import quarantine as store_quarantine
from ipt_core.store import tmp as store_tmp
from ipt_core.store.atomic import fsync_dir, read_and_fsync, write_new_file
from ipt_core.store.entry import (
    ENTRY_JSON,
    FORMAT_VERSION,
    KEY_RE,
    TENSOR_FILE,
    Entry,
    EntryCorrupt,
    EntryGone,
    EntryMissing,
    StoreError,
    entry_from_record,
    read_entry_dir,
    rmtree,
    stat_sig,
)
from ipt_core.store.keys import canonical, check_json, sha256_bytes, spec_key

if TYPE_CHECKING:  # torch is imported lazily: listing the store does not need it
    import torch


log = logging.getLogger("ipt_core.store")

REPLAY_ENV = "IPT_REPLAY"
"""Set to 1, every store opened is read-only: a command replays from the store or fails naming the
first result it would have to compute (``python -m ipt_core verify --replay``)."""
REPLAY_LOG_ENV = "IPT_REPLAY_LOG"
"""A file: a read-only store appends the key of every entry it reads there, one a line (what a
replayed command reached; ``ipt_core.cli.replay``)."""

def default_root() -> Path:
    """The default store root: ``$IPT_CACHE`` if set, else ``./cache`` in the working directory.

    Never a folder inside the installed package: a store there would be shared by every user of a
    site-packages install and lost on upgrade.

    Example:
        >>> default_root().name  # doctest: +SKIP
        'cache'
    """
    env = os.environ.get("IPT_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    return Path.cwd().resolve() / "cache"


class Store:
    """A content-addressed result store rooted at ``root`` (None: :func:`default_root`).

    Safe for concurrent use by several processes (CLI writers, the app reading) and threads. Nothing
    is created on disk until the first write.

    Example:
        >>> store = Store("/tmp/ipt-cache")                          # doctest: +SKIP
        >>> e = store.get(spec) or store.put("probe", spec, {"acc": 0.64}, {"w": w})  # doctest: +SKIP
        >>> [x.meta["acc"] for x in store.query("probe", task="sst2")]  # doctest: +SKIP
        [0.64]
    """

    # store roots whose tmp/ this process swept already (sweep_tmp): once per process per root
    _swept: set[Path] = set()
    _swept_lock = threading.Lock()

    def __init__(self, root: str | Path | None = None, *, read_only: bool | None = None) -> None:
        self.root: Path = default_root() if root is None else Path(root).expanduser().resolve()
        # read-only (a replay): every result must already be here; asking for a missing one raises
        # EntryMissing before anything is computed, and nothing on disk changes (no quarantine either).
        # None: ``$IPT_REPLAY=1`` turns it on for every store the process opens (the CLI's replay mode)
        self.read_only: bool = os.environ.get(REPLAY_ENV) == "1" if read_only is None else bool(read_only)
        # parsed entry.json by entry dir, valid while the files' (mtime_ns, size, inode) are unchanged
        self._cache: dict[Path, tuple[dict[str, tuple[int, int, int]], dict]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- paths -------------------------------------------------------------------------------------
    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def corrupt_dir(self) -> Path:
        return self.root / "corrupt"

    def _entry_dir(self, key: str) -> Path:
        return self.objects_dir / key[:2] / key

    @staticmethod
    def _check_key(key: Any) -> str:
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise InputError(f"not a store key (64 lower-case hex digits): {key!r}")
        return key

    def _resolve(self, spec_or_key: dict | str) -> str:
        if isinstance(spec_or_key, dict):
            return spec_key(spec_or_key)
        return self._check_key(spec_or_key)

    def key(self, spec: dict) -> str:
        """The key of ``spec`` (same as :func:`spec_key`)."""
        return spec_key(spec)

    def checkpoint_dir(self, key: str) -> Path:
        """``root/checkpoints/<key>``, created on demand: scratch space for a resumable run."""
        d = self.root / "checkpoints" / self._check_key(key)
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- corruption --------------------------------------------------------------------------------
    def _quarantine(self, path: Path, key: str, reason: str) -> None:
        """Move a corrupt entry to root/corrupt/<key>-<timestamp>/, record why in its quarantine.json
        (:mod:`ipt_core.store.quarantine`: the app tells the user) and log a warning."""
        if self.read_only:
            log.warning("store %s (read-only): entry %s is corrupt (%s); left in place", self.root, key, reason)
            return
        with self._lock:
            hit = self._cache.pop(path, None)
        # what the entry was: its last valid read, else what of its entry.json still parses
        if hit is not None:
            kind, spec = hit[1].get("kind"), hit[1].get("spec")
        else:
            kind, spec = store_quarantine.summary_of_damaged(path) if os.path.isdir(path) else (None, None)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        dest = self.corrupt_dir / f"{key}-{stamp}"
        try:
            self.corrupt_dir.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(dest):
                dest = dest.with_name(f"{dest.name}-{uuid.uuid4().hex[:8]}")
            if os.path.isdir(path) and not os.path.islink(path):
                os.rename(path, dest)
            else:  # a file (or link) where the entry directory should be: keep one directory per quarantine
                dest.mkdir()
                os.rename(path, dest / key)
        except FileNotFoundError:
            return  # another process moved or deleted it first
        except OSError as e:
            log.warning("store %s: entry %s is corrupt (%s) and could not be moved aside (%s); ignoring it",
                        self.root, key, reason, e)
            return
        try:
            store_quarantine.write_record(dest, key, kind, spec, reason)
        except OSError as e:  # the entry is aside already; only the notice is lost
            log.warning("store %s: cannot record the quarantine of %s in %s (%s)", self.root, key, dest, e)
        log.warning("store %s: entry %s is corrupt (%s); moved to %s, it will be recomputed",
                    self.root, key, reason, dest)

    def _load_valid(self, key: str) -> Entry | None:
        """Full verification of one entry; quarantines a corrupt one. None when absent or corrupt."""
        path = self._entry_dir(key)
        if not os.path.lexists(path):
            return None
        try:
            rec, sigs = read_entry_dir(path, key)
        except EntryGone:
            return None
        except EntryCorrupt as e:
            self._quarantine(path, key, str(e))
            return None
        except (OSError, MemoryError) as e:  # says nothing about the entry: not quarantined
            raise StoreError(f"store {self.root}: cannot read entry {key}: {e or type(e).__name__}") from e
        with self._lock:
            self._cache[path] = (sigs, rec)
        if self.read_only and os.environ.get(REPLAY_LOG_ENV):
            with open(os.environ[REPLAY_LOG_ENV], "a", encoding="utf-8") as f:
                f.write(key + "\n")
        return entry_from_record(rec, path)

    # -- reading -----------------------------------------------------------------------------------
    def get(self, spec_or_key: dict | str) -> Entry | None:
        """The entry of a spec (or key), or None when absent or corrupt.

        The entry is verified in full (JSON checksum, tensor file sha256). A corrupt one is logged as a
        warning on ``logging.getLogger("ipt_core.store")``, moved to ``root/corrupt/<key>-<timestamp>``
        and None is returned, so the caller recomputes it.

        Example:
            >>> e = store.get({"method": "pt", "task": "sst2", "seed": 0})   # doctest: +SKIP
            >>> e is None or e.meta                                         # doctest: +SKIP
        """
        return self._load_valid(self._resolve(spec_or_key))

    def _iter_entry_dirs(self) -> Iterator[tuple[str, Path]]:
        try:
            shards = list(os.scandir(self.objects_dir))
        except (FileNotFoundError, NotADirectoryError):
            return
        for shard in shards:
            if len(shard.name) != 2 or not shard.is_dir(follow_symlinks=False):
                continue
            try:
                items = list(os.scandir(shard.path))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for it in items:
                if KEY_RE.match(it.name) and it.name[:2] == shard.name:
                    yield it.name, Path(it.path)

    def _cached_or_load(self, key: str, path: Path, *, use_cache: bool, quarantine: bool = True) -> dict | None:
        """Record of one entry dir for scans: from the cache when its files' stats are unchanged.

        Raises EntryCorrupt (after quarantining the entry, when ``quarantine``) for a corrupt one.
        """
        if use_cache:
            with self._lock:
                hit = self._cache.get(path)
            if hit is not None:
                sigs, rec = hit
                try:
                    if all(stat_sig(path / name) == sig for name, sig in sigs.items()):
                        return rec
                except OSError:
                    pass  # changed or gone: reload below
        try:
            rec, sigs = read_entry_dir(path, key)
        except EntryGone:
            with self._lock:
                self._cache.pop(path, None)
            return None
        except EntryCorrupt as e:
            if quarantine:
                self._quarantine(path, key, str(e))
            raise
        except (OSError, MemoryError) as e:  # says nothing about the entry: skipped, not quarantined
            log.warning("store %s: cannot read entry %s (%s); skipping it", self.root, key, e or type(e).__name__)
            return None
        with self._lock:
            self._cache[path] = (sigs, rec)
        return rec

    def _scan(self, *, use_cache: bool, quarantine: bool = True
              ) -> tuple[list[tuple[str, Path, dict]], list[tuple[str, str]]]:
        """(valid entries, corrupt (key, reason) pairs) of the whole store; without ``quarantine`` it
        changes nothing on disk (``verify`` without ``--repair``)."""
        if quarantine:
            self.sweep_tmp()
        valid: list[tuple[str, Path, dict]] = []
        corrupt: list[tuple[str, str]] = []
        seen: set[Path] = set()
        for key, path in self._iter_entry_dirs():
            seen.add(path)
            try:
                rec = self._cached_or_load(key, path, use_cache=use_cache, quarantine=quarantine)
            except EntryCorrupt as e:
                corrupt.append((key, str(e)))
                continue
            if rec is not None:
                valid.append((key, path, rec))
        with self._lock:
            for p in [p for p in self._cache if p not in seen]:
                del self._cache[p]
        return valid, corrupt

    def query(self, kind: str | None = None, **where: Any) -> list[Entry]:
        """All valid entries, sorted by creation time, filtered by kind and top-level spec fields.

        A ``where`` value matches by equality, or is a predicate called with the field's value. An
        entry whose spec lacks a field in ``where``, or whose field makes the predicate raise (a string
        where the predicate compares numbers), does not match. Corrupt entries are skipped (and
        quarantined). Parsed entry.json files are cached per instance while their files' stats do not
        change, so repeated queries cost one stat per file.

        Example:
            >>> store.query("pt_run", task="sst2", seed=lambda s: s < 3)   # doctest: +SKIP
            [Entry(key='3f...', kind='pt_run', ...), ...]
        """
        valid, _ = self._scan(use_cache=True)
        out: list[tuple[float, str, Path, dict]] = []
        for key, path, rec in valid:
            if kind is not None and rec["kind"] != kind:
                continue
            spec = rec["spec"]
            ok = True
            for name, want in where.items():
                if name not in spec:
                    ok = False
                    break
                if callable(want):
                    try:
                        hit = bool(want(spec[name]))
                    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
                        hit = False  # a value of another type than the caller expects: not a match
                    if not hit:
                        ok = False
                        break
                elif spec[name] != want:
                    ok = False
                    break
            if ok:
                out.append((float(rec["created"]), key, path, rec))
        out.sort(key=lambda t: (t[0], t[1]))
        return [entry_from_record(rec, path) for _, _, path, rec in out]

    def verify(self) -> dict:
        """Re-read and re-hash every entry (ignoring the cache); quarantine corrupt ones.

        Returns ``{"ok": number_of_valid_entries, "corrupt": [keys quarantined]}``.
        """
        valid, corrupt = self._scan(use_cache=False)
        return {"ok": len(valid), "corrupt": sorted(k for k, _ in corrupt)}

    def check(self, *, repair: bool = False) -> dict:
        """Re-read and re-hash every entry and look at the temp folder: ``python -m ipt_core verify``.

        Without ``repair`` nothing is changed (corrupt entries stay where they are and are reported);
        with it corrupt entries are quarantined and stale temp items removed. Returns::

            {"root", "ok": valid entries, "corrupt": [{"key", "reason"}], "quarantined": items in corrupt/,
             "unseen_quarantines": records not yet shown, "tmp_stale": [names], "tmp_live": [names],
             "tmp_stale_bytes": int, "tmp_removed": int, "repaired": bool}
        """
        valid, corrupt = self._scan(use_cache=False, quarantine=repair)
        stale, live = store_tmp.stale_and_live(self.tmp_dir)
        stale_bytes = sum(store_tmp.tree_bytes(p) for p in stale)
        removed = store_tmp.clean(self.tmp_dir) if repair else 0
        try:
            quarantined = sum(1 for _ in os.scandir(self.corrupt_dir))
        except OSError:
            quarantined = 0
        return {"root": str(self.root), "ok": len(valid),
                "corrupt": [{"key": k, "reason": r} for k, r in sorted(corrupt)], "quarantined": quarantined,
                "unseen_quarantines": len(store_quarantine.list_quarantines(self.root, unseen_only=True)),
                "tmp_stale": sorted(p.name for p in stale), "tmp_live": sorted(p.name for p in live),
                "tmp_stale_bytes": stale_bytes, "tmp_removed": removed, "repaired": repair}

    # -- writing -----------------------------------------------------------------------------------
    def put(
        self,
        kind: str,
        spec: dict,
        meta: dict,
        tensors: dict[str, "torch.Tensor"] | None = None,
        *,
        command: str | None = None,
    ) -> Entry:
        """Store a result atomically and return its Entry.

        The entry is built in ``root/tmp/<uuid>/`` (``tensors.safetensors`` with the tensors made
        contiguous on CPU, then ``entry.json``), fsynced, and renamed to ``root/objects/<key[:2]>/<key>``.
        If a valid entry of that key exists already (written earlier, or by a concurrent writer), the
        new one is discarded and the existing Entry is returned; a corrupt one is quarantined and the
        rename retried once.

        Raises:
            TypeError: ``spec`` or ``meta`` holds a non-JSON value, or a tensor is not a torch.Tensor
                (the message names the field).
            ValueError: ``meta`` holds NaN or an infinity (the message names the field).
            StoreError: the write failed (disk full, permissions...): the message names store and key;
                the temp dir is removed and nothing visible changes.

        Example:
            >>> e = store.put("probe", {"task": "sst2", "seed": 0}, {"acc": 0.64},
            ...               {"weight": torch.randn(2, 384)}, command="python -m ipt_core probe")  # doctest: +SKIP
        """
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"kind must be a non-empty str, got {kind!r}")
        key = spec_key(spec)
        if not isinstance(meta, dict):
            raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
        check_json(meta, "meta", ValueError)
        if command is not None and not isinstance(command, str):
            raise TypeError(f"command must be a str or None, got {type(command).__name__}")
        prepared = self._prepare_tensors(tensors)

        existing = self._load_valid(key)
        if existing is not None:
            log.debug("store %s: entry %s exists; keeping it", self.root, key)
            return existing
        self.require_writable(kind, spec)  # a read-only store (a replay) stops here

        tensor_info = [
            {"name": n, "dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape)}
            for n, t in prepared.items()
        ]
        self.sweep_tmp()
        tmp = store_tmp.new_tmp_path(self.tmp_dir)
        final = self._entry_dir(key)
        try:
            try:
                tmp.mkdir(parents=True)
                files: dict[str, str] = {}
                if prepared:
                    import safetensors.torch

                    tpath = tmp / TENSOR_FILE
                    safetensors.torch.save_file(prepared, str(tpath))
                    files[TENSOR_FILE] = sha256_bytes(read_and_fsync(tpath))
                body = {
                    "format": FORMAT_VERSION,
                    "key": key,
                    "kind": kind,
                    "spec": spec,
                    "meta": meta,
                    "command": command,
                    "created": time.time(),
                    "code_version": spec.get("code_version"),
                    "files": files,
                    "tensors": tensor_info,
                }
                # normalise (tuples -> lists, ...) so the returned Entry equals what get() reads back
                body = json.loads(canonical(body))
                rec = {**body, "checksum": sha256_bytes(canonical(body))}
                text = json.dumps(rec, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)
                write_new_file(tmp / ENTRY_JSON, text.encode("utf-8"))
                fsync_dir(tmp)
                final.parent.mkdir(parents=True, exist_ok=True)
                entry = self._publish(tmp, final, key)
            except StoreError:
                raise
            except OSError as e:
                reason = "no space left" if e.errno == errno.ENOSPC else (e.strerror or str(e))
                raise StoreError(
                    f"store {self.root}: {reason} writing entry {key} ({kind}): {e}"
                ) from e
            except Exception as e:  # noqa: BLE001 - safetensors' own SafetensorError (disk full inside Rust), ...
                text = " ".join(str(e).split())[:300] or type(e).__name__
                reason = "no space left" if "no space left" in text.lower() else f"{type(e).__name__}"
                raise StoreError(
                    f"store {self.root}: {reason} writing entry {key} ({kind}): {text}"
                ) from e
        finally:
            if tmp.exists():
                rmtree(tmp)
        if entry is None:
            entry = entry_from_record(rec, final)
            with self._lock:
                self._cache.pop(final, None)
        return entry

    def _publish(self, tmp: Path, final: Path, key: str) -> Entry | None:
        """Rename tmp -> final. None when our entry is now the live one, else the existing Entry."""
        for attempt in range(2):
            try:
                os.rename(tmp, final)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                    raise
            else:
                fsync_dir(final.parent)
                return None
            # the final dir exists: written meanwhile by another writer, or corrupt
            try:
                rec, sigs = read_entry_dir(final, key)
            except EntryGone:
                continue
            except EntryCorrupt as c:
                if attempt == 0:
                    self._quarantine(final, key, str(c))
                    continue
                raise StoreError(f"store {self.root}: entry {key} stays corrupt after quarantine ({c})")
            log.debug("store %s: entry %s was written concurrently; keeping the existing one",
                      self.root, key)
            with self._lock:
                self._cache[final] = (sigs, rec)
            return entry_from_record(rec, final)
        existing = self._load_valid(key)
        if existing is not None:
            return existing
        raise StoreError(f"store {self.root}: could not publish entry {key} (directory kept changing)")

    @staticmethod
    def _prepare_tensors(tensors: dict[str, "torch.Tensor"] | None) -> dict[str, "torch.Tensor"]:
        if not tensors:
            return {}
        if not isinstance(tensors, dict):
            raise TypeError(f"tensors must be a dict of name -> torch.Tensor, got {type(tensors).__name__}")
        import torch

        out: dict[str, torch.Tensor] = {}
        for name, t in tensors.items():
            if not isinstance(name, str) or not name or name == "__metadata__":
                raise TypeError(f"tensor names must be non-empty str (not '__metadata__'), got {name!r}")
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"tensors[{name!r}]: expected a torch.Tensor, got {type(t).__module__}."
                                f"{type(t).__qualname__}")
            if t.layout != torch.strided:
                raise TypeError(f"tensors[{name!r}]: only dense tensors can be stored, got {t.layout}")
            # own, contiguous CPU storage: safetensors refuses views and tensors sharing memory
            out[name] = t.detach().cpu().clone(memory_format=torch.contiguous_format)
        return out

    def memo(self, kind: str, spec: dict, compute, *, command: str | None = None) -> Entry:
        """The entry of ``spec``: the stored one, else ``compute()`` stored under ``kind``.

        ``compute()`` returns ``meta`` or ``(meta, tensors)``; it runs only when ``spec`` has no
        valid entry.

        Example::

            entry = store.memo("zero_shot", spec, lambda: {"test_acc": 0.5})
        """
        entry = self.get(spec)
        if entry is not None:
            return entry
        self.require_writable(kind, spec)
        out = compute()
        meta, tensors = out if isinstance(out, tuple) else (out, None)
        return self.put(kind, spec, meta, tensors, command=command)

    def require_writable(self, kind: str, spec: dict) -> None:
        """Raise :class:`EntryMissing` when this store is read-only: call it before computing the
        ``kind`` entry of ``spec`` (a replay must fail before it trains, not after)."""
        if self.read_only:
            text = canonical(spec).decode("utf-8")
            raise EntryMissing(f"store {self.root} is read-only ({REPLAY_ENV}=1) and has no {kind} entry "
                               f"{spec_key(spec)}: today's code would compute it; its spec: {text[:400]}")

    # -- housekeeping ------------------------------------------------------------------------------
    def delete(self, key: str) -> bool:
        """Remove an entry; True if it existed. Atomic for readers (renamed away, then removed)."""
        key = self._check_key(key)
        path = self._entry_dir(key)
        with self._lock:
            self._cache.pop(path, None)
        if not os.path.lexists(path):
            return False
        trash = store_tmp.new_tmp_path(self.tmp_dir, ".deleted")
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            os.rename(path, trash)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise StoreError(f"store {self.root}: cannot delete entry {key}: {e}") from e
        rmtree(trash)
        return True

    def clean_tmp(self, older_than_s: float = store_tmp.STALE_TMP_S) -> int:
        """Remove temp items left by killed writers (:func:`ipt_core.store.tmp.stale_and_live`); how many."""
        return store_tmp.clean(self.tmp_dir, older_than_s)

    def sweep_tmp(self) -> int:
        """:meth:`clean_tmp` once per process per store root (called when a process first reads or
        writes the store), so a ``kill -9`` mid-write leaves no 400 MB temp file for long. Never raises."""
        with Store._swept_lock:
            if self.root in Store._swept:
                return 0
            Store._swept.add(self.root)
        try:
            n = self.clean_tmp()
        except OSError as e:
            n = 0
            log.warning("store %s: cannot clean temp items (%s)", self.root, e)
        if n:
            log.warning("store %s: removed %d temp item(s) left by writers that were killed", self.root, n)
        return n
