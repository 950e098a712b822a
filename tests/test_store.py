"""Tests of ipt_core.store: round trips, keys, corruption handling, concurrency, disk full."""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipt_core import store as store_mod
from ipt_core.store import Store, default_root
from ipt_core.store import tmp as store_tmp
from ipt_core.store.entry import CorruptEntryError, Entry, StoreError
from ipt_core.store.keys import spec_key

SPEC = {"method": "pt", "task": "sst2", "seed": 0, "lr": 0.03, "backbone": {"id": "minilm", "sha": "ab12"},
        "code_version": "pt-1"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "cache")


def _visible(store: Store) -> list[Path]:
    objects = store.root / "objects"
    return sorted(p for p in objects.glob("*/*")) if objects.exists() else []


def _tmp_items(store: Store) -> list[Path]:
    return sorted(store.tmp_dir.iterdir()) if store.tmp_dir.exists() else []


# -------------------------------------------------------------------------------------------- keys


def test_same_spec_different_order_same_key():
    a = {"seed": 1, "method": "ipt", "hp": {"lr": 0.1, "d_i": 64}, "tasks": ["a", "b"]}
    b = {"tasks": ("a", "b"), "hp": {"d_i": 64, "lr": 0.1}, "method": "ipt", "seed": 1}
    assert spec_key(a) == spec_key(b)
    assert len(spec_key(a)) == 64 and int(spec_key(a), 16) >= 0
    assert spec_key(a) != spec_key({**a, "seed": 2})
    assert Store("/nonexistent-store").key(a) == spec_key(a)


def test_spec_key_matches_documented_canonical_json():
    import hashlib

    spec = {"b": "é", "a": [1, 2.5, None, True]}
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert spec_key(spec) == hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    "spec, path",
    [
        ({"w": torch.zeros(2)}, "spec.w"),
        ({"hp": {"tasks": {"a", "b"}}}, "spec.hp.tasks"),
        ({"hp": {"lr": float("nan")}}, "spec.hp.lr"),
        ({"curve": [0.1, float("inf")]}, "spec.curve[1]"),
        ({"x": [{"y": b"raw"}]}, "spec.x[0].y"),
        ({"odd key": object()}, "spec['odd key']"),
        ({"m": {1: "a"}}, "spec.m"),
    ],
)
def test_spec_key_rejects_non_json_naming_the_field(spec, path):
    with pytest.raises(TypeError) as info:
        spec_key(spec)
    assert str(info.value).startswith(path + ":"), str(info.value)


def test_spec_key_rejects_non_dict():
    with pytest.raises(TypeError, match="dict"):
        spec_key([1, 2])  # type: ignore[arg-type]


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("IPT_CACHE", str(tmp_path / "c"))
    assert default_root() == (tmp_path / "c").resolve()
    assert Store().root == (tmp_path / "c").resolve()
    monkeypatch.delenv("IPT_CACHE")
    monkeypatch.chdir(tmp_path)
    assert default_root() == tmp_path.resolve() / "cache"  # the working directory's cache/, never the package's
    assert not str(default_root()).startswith(str(Path(store_mod.__file__).resolve().parent))


# -------------------------------------------------------------------------------------- round trip


def test_round_trip_with_tensors_of_several_dtypes(store):
    tensors = {
        "prompt": torch.randn(4, 8),
        "bf16": torch.randn(3, 5).to(torch.bfloat16),
        "half": torch.randn(7).half(),
        "ids": torch.arange(10, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "u8": torch.arange(6, dtype=torch.uint8).reshape(2, 3),
        "scalar": torch.tensor(3.5, dtype=torch.float64),
        "view": torch.randn(6, 6).t()[1:4],  # non-contiguous view
        "empty": torch.zeros(0, 3),
    }
    meta = {"acc": 0.81, "curve": [0.5, 0.6, 0.7], "names": ["a", "b"], "note": "ünïcode", "n": 10**30,
            "nested": {"x": None, "ok": True}}
    cmd = "python -m ipt_core pt --task sst2 --seed 0"
    assert not store.root.exists()  # lazily created
    e = store.put("pt_run", SPEC, meta, tensors, command=cmd)
    assert isinstance(e, Entry)
    assert e.key == spec_key(SPEC) and e.kind == "pt_run" and e.command == cmd
    assert e.spec == SPEC and e.meta == meta
    assert e.tensor_names == tuple(tensors)
    assert e.path == store.root / "objects" / e.key[:2] / e.key
    assert abs(e.created - time.time()) < 60

    g = Store(store.root).get(SPEC)  # a fresh instance: no cache
    assert g == e
    loaded = g.tensors()
    assert set(loaded) == set(tensors)
    for name, t in tensors.items():
        assert loaded[name].dtype == t.dtype, name
        assert loaded[name].shape == t.shape, name
        assert torch.equal(loaded[name], t), name
    assert torch.equal(g.tensor("bf16"), tensors["bf16"])
    with pytest.raises(KeyError, match="nope"):
        g.tensor("nope")
    assert store.get(e.key) == e  # by key too

    rec = json.loads((e.path / "entry.json").read_text())
    assert rec["code_version"] == "pt-1" and set(rec["files"]) == {"tensors.safetensors"}
    assert "checksum" in rec and rec["key"] == e.key
    assert _tmp_items(store) == []


def test_round_trip_without_tensors_and_tuple_normalisation(store):
    e = store.put("zero_shot", {"task": "mr", "dims": (1, 2)}, {"acc": 0.5, "pair": (1, 2)})
    assert e.tensor_names == () and e.tensors() == {} and e.command is None
    assert e.spec == {"task": "mr", "dims": [1, 2]} and e.meta["pair"] == [1, 2]
    assert sorted(p.name for p in e.path.iterdir()) == ["entry.json"]
    assert store.get({"dims": [1, 2], "task": "mr"}) == e


def test_tensor_on_other_device_or_requiring_grad_is_stored(store):
    p = torch.nn.Parameter(torch.randn(2, 3))
    shared = torch.randn(4, 4)
    e = store.put("pt_run", {"t": 1}, {}, {"p": p, "a": shared, "row": shared[0]})
    t = store.get(e.key).tensors()
    assert torch.equal(t["p"], p.detach()) and not t["p"].requires_grad
    assert torch.equal(t["row"], shared[0])


def test_get_absent_returns_none_and_creates_nothing(store):
    assert store.get({"no": "such"}) is None
    assert store.get("0" * 64) is None
    assert store.query() == [] and store.verify() == {"ok": 0, "corrupt": []}
    assert store.clean_tmp() == 0
    assert not store.root.exists()
    with pytest.raises(ValueError):
        store.get("../etc")


def test_put_existing_key_returns_existing(store):
    first = store.put("probe", {"a": 1}, {"acc": 1.0})
    second = store.put("probe", {"a": 1}, {"acc": 2.0})
    assert second == first and second.meta == {"acc": 1.0}
    assert len(_visible(store)) == 1 and _tmp_items(store) == []


@pytest.mark.parametrize(
    "meta, exc, path",
    [
        ({"acc": float("nan")}, ValueError, "meta.acc"),
        ({"curve": [0.1, float("-inf")]}, ValueError, "meta.curve[1]"),
        ({"w": torch.ones(1)}, TypeError, "meta.w"),
        ({"s": {1, 2}}, TypeError, "meta.s"),
    ],
)
def test_put_rejects_bad_meta_naming_the_field(store, meta, exc, path):
    with pytest.raises(exc) as info:
        store.put("probe", {"a": 1}, meta)
    assert path in str(info.value)
    assert not store.root.exists()


def test_put_rejects_bad_tensors_and_kind(store):
    with pytest.raises(TypeError, match="'w'"):
        store.put("probe", {"a": 1}, {}, {"w": [1.0, 2.0]})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="kind"):
        store.put("", {"a": 1}, {})
    with pytest.raises(TypeError, match="spec.x"):
        store.put("probe", {"x": torch.ones(1)}, {})
    assert not store.root.exists()


def test_delete_and_checkpoint_dir(store):
    e = store.put("probe", {"a": 1}, {"acc": 1.0}, {"w": torch.ones(2)})
    assert store.delete(e.key) is True
    assert store.get(e.key) is None and store.query() == []
    assert store.delete(e.key) is False
    assert _visible(store) == [] and _tmp_items(store) == []
    d = store.checkpoint_dir(e.key)
    assert d == store.root / "checkpoints" / e.key and d.is_dir()
    with pytest.raises(ValueError):
        store.checkpoint_dir("../../x")


# -------------------------------------------------------------------------------------- corruption


def _truncate_tensors(e: Entry) -> None:
    f = e.path / "tensors.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _edit_number(e: Entry) -> None:
    f = e.path / "entry.json"
    text = f.read_text()
    assert '"acc": 0.75' in text
    f.write_text(text.replace('"acc": 0.75', '"acc": 0.95'))


def _delete_tensors(e: Entry) -> None:
    (e.path / "tensors.safetensors").unlink()


def _garbage_json(e: Entry) -> None:
    (e.path / "entry.json").write_bytes(b"{\"key\": \"abc\", garbage \x00\xff")


def _flip_tensor_byte(e: Entry) -> None:
    f = e.path / "tensors.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))


def _nan_json(e: Entry) -> None:
    f = e.path / "entry.json"
    f.write_text(f.read_text().replace('"acc": 0.75', '"acc": NaN'))


@pytest.mark.parametrize(
    "damage", [_truncate_tensors, _edit_number, _delete_tensors, _garbage_json, _flip_tensor_byte, _nan_json]
)
def test_corrupt_entry_is_hidden_logged_and_quarantined(store, caplog, damage):
    spec = {"task": "sst2", "seed": 3}
    e = store.put("pt_run", spec, {"acc": 0.75}, {"prompt": torch.randn(16, 32)})
    assert store.get(spec) is not None
    damage(e)
    with caplog.at_level(logging.WARNING, logger="ipt_core.store"):
        assert store.get(spec) is None
    assert any("corrupt" in r.getMessage() and e.key in r.getMessage() for r in caplog.records)
    assert all(r.name == "ipt_core.store" for r in caplog.records)
    assert not e.path.exists()
    moved = list((store.root / "corrupt").iterdir())
    assert len(moved) == 1 and moved[0].name.startswith(e.key + "-")
    # the caller recomputes: a new put works and is valid
    again = store.put("pt_run", spec, {"acc": 0.75}, {"prompt": torch.zeros(16, 32)})
    assert store.get(spec) == again


def test_entry_tensors_detects_damage_after_get(store):
    e = store.put("pt_run", {"a": 1}, {"acc": 0.5}, {"p": torch.randn(8)})
    got = store.get(e.key)
    _flip_tensor_byte(e)
    with pytest.raises(CorruptEntryError, match="sha256"):
        got.tensors()
    _delete_tensors(e)
    with pytest.raises(CorruptEntryError, match="missing"):
        got.tensor("p")


def test_put_over_corrupt_existing_entry_quarantines_and_writes(store, caplog):
    e = store.put("probe", {"a": 1}, {"acc": 0.75}, {"w": torch.ones(3)})
    _edit_number(e)
    # simulate a writer that did not see the damaged entry before writing (race): skip the early check
    store._load_valid = lambda key: None  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="ipt_core.store"):
        new = store.put("probe", {"a": 1}, {"acc": 0.5}, {"w": torch.zeros(3)})
    del store._load_valid
    assert new.meta == {"acc": 0.5}
    assert store.get(new.key) == new and torch.equal(new.tensor("w"), torch.zeros(3))
    assert len(list((store.root / "corrupt").iterdir())) == 1
    assert _tmp_items(store) == []


def test_rename_conflict_with_valid_entry_keeps_existing(store):
    first = store.put("probe", {"a": 1}, {"acc": 1.0})
    store._load_valid = lambda key: None  # type: ignore[method-assign]  # writer raced past the check
    second = store.put("probe", {"a": 1}, {"acc": 2.0})
    del store._load_valid
    assert second == first and second.meta == {"acc": 1.0}
    assert len(_visible(store)) == 1 and _tmp_items(store) == []


# ------------------------------------------------------------------------------------------- query


def test_query_filters_by_kind_and_spec_fields_and_skips_corrupt(store, caplog):
    entries = []
    for seed in range(3):
        for task in ("sst2", "mr"):
            entries.append(store.put("pt_run", {"task": task, "seed": seed, "lr": 0.03}, {"acc": 0.75},
                                     {"p": torch.ones(2)}))
    probe = store.put("probe", {"task": "sst2", "seed": 0}, {"acc": 0.7})
    assert [e.key for e in store.query()] == [e.key for e in entries + [probe]]  # sorted by created
    assert len(store.query("pt_run")) == 6
    assert store.query("probe") == [probe]
    assert {e.spec["seed"] for e in store.query("pt_run", task="sst2")} == {0, 1, 2}
    assert len(store.query(task="sst2", seed=0)) == 2
    assert len(store.query("pt_run", seed=lambda s: s >= 1)) == 4
    assert store.query("pt_run", missing_field=1) == []
    assert store.query("nope") == []

    bad = store.query("pt_run", task="mr", seed=1)[0]
    _truncate_tensors(bad)  # changes size: the cached record is re-verified
    other = store.query("pt_run", task="mr", seed=2)[0]
    _garbage_json(other)
    with caplog.at_level(logging.WARNING, logger="ipt_core.store"):
        left = store.query("pt_run")
    assert len(left) == 4 and {bad.key, other.key}.isdisjoint(e.key for e in left)
    assert not bad.path.exists() and not other.path.exists()
    assert len(list((store.root / "corrupt").iterdir())) == 2
    assert sum("corrupt" in r.getMessage() for r in caplog.records) == 2
    # mutating a returned entry does not leak into the store's cache
    left[0].meta["acc"] = -1
    left[0].spec["task"] = "changed"
    assert store.query("pt_run")[0].meta["acc"] == 0.75
    assert store.query("pt_run", task="changed") == []


def test_query_sees_entries_written_by_another_instance(store):
    reader = Store(store.root)
    assert reader.query() == []
    e = store.put("msf", {"d_i": 4}, {"loss": 1.0})
    assert reader.query() == [e]
    store.delete(e.key)
    assert reader.query() == []


def test_verify_rehashes_everything(store):
    good = store.put("probe", {"a": 1}, {"acc": 0.75}, {"w": torch.ones(4)})
    bad = store.put("probe", {"a": 2}, {"acc": 0.75}, {"w": torch.ones(4)})
    store.query()  # fills the cache
    f = bad.path / "tensors.safetensors"
    st_ = f.stat()
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x01  # same size and mtime: only a re-hash finds it
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert store.verify() == {"ok": 1, "corrupt": [bad.key]}
    assert store.query() == [store.get(good.key)]


# ---------------------------------------------------------------------------- crashes, full disks


def test_killed_writer_leaves_invisible_temp_and_clean_tmp_removes_it(store):
    store.put("probe", {"a": 1}, {"acc": 1.0})
    key = spec_key({"a": 2})
    # a writer killed mid-write: a temp dir with a partial tensor file and a half-written entry.json
    dead = store.tmp_dir / "0123456789abcdef0123456789abcdef"
    dead.mkdir(parents=True)
    (dead / "tensors.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"w\":")
    (dead / "entry.json").write_text('{"key": "' + key + '", "kind": "pro')
    assert store.get(key) is None
    assert [e.spec for e in store.query()] == [{"a": 1}]
    assert store.verify() == {"ok": 1, "corrupt": []}
    assert store.clean_tmp() == 0  # too fresh: could be a live writer
    old = time.time() - 7200
    for p in (dead, *dead.iterdir()):
        os.utime(p, (old, old))
    assert store.clean_tmp() == 1
    assert _tmp_items(store) == []
    assert store.put("probe", {"a": 2}, {"acc": 0.5}).meta == {"acc": 0.5}


def test_disk_full_in_tensor_write_raises_store_error_and_leaves_nothing(store, monkeypatch):
    import safetensors.torch

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    key = spec_key({"a": 1})
    with pytest.raises(StoreError) as info:
        store.put("probe", {"a": 1}, {"acc": 1.0}, {"w": torch.ones(3)})
    msg = str(info.value)
    assert "no space left" in msg and key in msg and str(store.root) in msg
    assert isinstance(info.value.__cause__, OSError)
    assert _visible(store) == [] and _tmp_items(store) == []
    assert store.get(key) is None and store.query() == []


def test_disk_full_in_json_write_raises_store_error_and_leaves_nothing(store, monkeypatch):
    key = spec_key({"a": 1})

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "write", full)
        with pytest.raises(StoreError, match=f"no space left writing entry {key}"):
            store.put("probe", {"a": 1}, {"acc": 1.0})
    assert _visible(store) == [] and _tmp_items(store) == []
    assert store.get(key) is None
    assert store.put("probe", {"a": 1}, {"acc": 1.0}).meta == {"acc": 1.0}  # works once space is back


# ------------------------------------------------------------------------------------- two writers


def _race_writer(root: str, barrier, queue, tag: int) -> None:
    import torch as _torch

    from ipt_core.store import Store as _Store

    st_ = _Store(root)
    barrier.wait(timeout=60)
    e = st_.put("pt_run", {"task": "race", "seed": 0}, {"acc": 0.5, "curve": list(range(50))},
                {"prompt": _torch.full((64, 64), float(tag))})
    queue.put((e.key, e.meta, e.created, float(e.tensor("prompt")[0, 0])))


@pytest.mark.slow  # two spawned processes, each importing torch
def test_two_processes_putting_the_same_key(store):
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race_writer, args=(str(store.root), barrier, queue, i)) for i in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    (k1, m1, c1, v1), (k2, m2, c2, v2) = results
    assert k1 == k2 and m1 == m2 == {"acc": 0.5, "curve": list(range(50))}
    assert c1 == c2 and v1 == v2  # both got the one entry that won
    assert len(_visible(store)) == 1 and _tmp_items(store) == []
    e = store.get(k1)
    assert e is not None and float(e.tensor("prompt")[0, 0]) == v1
    assert store.verify() == {"ok": 1, "corrupt": []}


# -------------------------------------------------------------------------------------- hypothesis

_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
_json = st.recursive(_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                      max_size=4), max_leaves=20)
_obj = st.dictionaries(st.text(max_size=8), _json, max_size=5)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=_obj, meta=_obj, command=st.none() | st.text(max_size=20), kind=st.sampled_from(["pt_run", "msf"]))
def test_hypothesis_round_trip(spec, meta, command, kind):
    with tempfile.TemporaryDirectory() as d:
        s = Store(d)
        e = s.put(kind, spec, meta, command=command)
        reversed_spec = dict(reversed(list(spec.items())))
        assert spec_key(reversed_spec) == e.key
        g = Store(d).get(reversed_spec)
        assert g is not None
        assert g == e
        assert g.spec == spec and g.meta == meta and g.command == command and g.kind == kind
        assert s.query(kind) == [e]


# ------------------------------------------------------------------ hostile entries (issue 32)


def _rewrite_record(e: Entry, change) -> None:
    """Edit entry.json through ``change(rec)`` and re-sign it: a record that passes the checksum."""
    from ipt_core.store.keys import canonical, sha256_bytes

    f = e.path / "entry.json"
    rec = json.loads(f.read_text())
    change(rec)
    body = {k: v for k, v in rec.items() if k != "checksum"}
    rec["checksum"] = sha256_bytes(canonical(body))
    f.write_text(json.dumps(rec))


def _raw(text: str | bytes):
    def damage(e: Entry) -> None:
        (e.path / "entry.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    return damage


def _field(name, value):
    return lambda e: _rewrite_record(e, lambda rec: rec.__setitem__(name, value))


HOSTILE_ENTRIES = {
    "deep_list_nesting": _raw("[" * 100000 + "]" * 100000),
    "deep_dict_nesting": _raw('{"a":' * 100000 + "1" + "}" * 100000),
    "nested_meta_deep_but_parseable": lambda e: (e.path / "entry.json").write_text(
        (e.path / "entry.json").read_text().replace('"acc": 0.75', '"acc": ' + "[" * 5000 + "]" * 5000)),
    "invalid_utf8": _raw(b'{"key": "\xff\xfe"}'),
    "utf16_bom": _raw("\ufeff{}".encode("utf-16")),
    "lone_surrogate_escape": _raw('{"key": "\\ud800"}'),
    "huge_int": _raw('{"created": ' + "9" * 5000 + "}"),
    "top_level_list": _raw("[]"),
    "top_level_number": _raw("3"),
    "meta_is_list": _field("meta", [1, 2]),
    "spec_is_string": _field("spec", "x"),
    "kind_is_number": _field("kind", 3),
    "kind_is_empty": _field("kind", ""),
    "created_is_string": _field("created", "yesterday"),
    "created_is_bool": _field("created", True),
    "created_is_huge_int": _field("created", 10 ** 400),
    "command_is_dict": _field("command", {"a": 1}),
    "files_is_list": _field("files", []),
    "files_value_is_number": lambda e: _rewrite_record(e, lambda r: r["files"].__setitem__("tensors.safetensors", 3)),
    "tensors_is_dict": _field("tensors", {}),
    "tensor_item_is_number": _field("tensors", [3]),
    "tensor_shape_is_string": lambda e: _rewrite_record(e, lambda r: r["tensors"][0].__setitem__("shape", "16x32")),
    "tensor_shape_negative": lambda e: _rewrite_record(e, lambda r: r["tensors"][0].__setitem__("shape", [-1])),
    "tensor_name_twice": lambda e: _rewrite_record(e, lambda r: r["tensors"].append(dict(r["tensors"][0]))),
    "checksum_is_number": lambda e: (e.path / "entry.json").write_text(
        json.dumps(json.loads((e.path / "entry.json").read_text()) | {"checksum": 5})),
    "entry_json_is_a_dir": lambda e: ((e.path / "entry.json").unlink(), (e.path / "entry.json").mkdir()),
    "entry_dir_is_a_file": lambda e: (shutil.rmtree(e.path), e.path.write_text("x")),
}


@pytest.mark.parametrize("damage", list(HOSTILE_ENTRIES.values()), ids=list(HOSTILE_ENTRIES))
def test_any_malformed_entry_is_quarantined_and_treated_as_missing(store, caplog, damage):
    """One hostile entry.json (a RecursionError, a wrong type at any depth...) must neither raise nor
    hide the store's other entries: it is quarantined, recorded, and recomputed."""
    from ipt_core.store.quarantine import list_quarantines

    good = store.put("probe", {"task": "other"}, {"acc": 0.5})
    spec = {"task": "sms_spam", "seed": 0}
    e = store.put("pt_run", spec, {"acc": 0.75}, {"prompt": torch.randn(16, 32)})
    store.query()  # the valid record is cached: the quarantine record names it from there
    damage(e)
    with caplog.at_level(logging.WARNING, logger="ipt_core.store"):
        assert store.query() == [good]
        assert store.get(spec) is None
        assert Store(store.root).get(spec) is None  # a fresh instance (no cache) too
    assert not os.path.lexists(e.path)
    moved = list(store.corrupt_dir.iterdir())
    assert len(moved) == 1 and moved[0].name.startswith(e.key + "-") and moved[0].is_dir()
    [q] = list_quarantines(store.root)
    assert q["key"] == e.key and q["what"] == "pt_run sms_spam seed 0" and q["reason"] and not q["seen"]
    again = store.put("pt_run", spec, {"acc": 0.75}, {"prompt": torch.zeros(16, 32)})
    assert store.get(spec) == again and store.verify() == {"ok": 2, "corrupt": []}


def test_quarantine_of_an_entry_never_read_valid_names_what_still_parses(store):
    from ipt_core.store.quarantine import list_quarantines, mark_seen

    e = store.put("pt_run", {"task": "sms_spam", "seed": 1}, {"acc": 0.75}, {"prompt": torch.ones(2)})
    _truncate_tensors(e)
    assert Store(store.root).get(e.key) is None  # a new process: nothing cached
    [q] = list_quarantines(store.root, unseen_only=True)
    assert q["what"] == "pt_run sms_spam seed 1" and "sha256 mismatch" in q["reason"]
    e2 = store.put("probe", {"task": "x"}, {"acc": 0.5})
    _raw("[" * 100000)(e2)
    assert store.get(e2.key) is None
    assert [q["what"] for q in list_quarantines(store.root)] == [f"entry {e2.key[:12]}", "pt_run sms_spam seed 1"]
    assert mark_seen(store.root) == 2
    assert list_quarantines(store.root, unseen_only=True) == [] and len(list_quarantines(store.root)) == 2


def test_query_predicate_that_raises_on_a_strange_value_does_not_match(store):
    store.put("pt_run", {"task": "a", "seed": "zero"}, {"acc": 0.5})
    ok = store.put("pt_run", {"task": "b", "seed": 1}, {"acc": 0.5})
    assert store.query("pt_run", seed=lambda s: s < 3) == [ok]


def test_oversized_entry_json_is_corrupt_without_parsing(store, monkeypatch):
    from ipt_core.store import entry as store_entry

    e = store.put("probe", {"a": 1}, {"acc": 0.5, "pad": "x" * 2000})
    monkeypatch.setattr(store_entry, "MAX_ENTRY_JSON_BYTES", 1000)
    assert store.get(e.key) is None and len(list(store.corrupt_dir.iterdir())) == 1


def test_memory_error_while_reading_is_not_a_quarantine(store, monkeypatch):
    from ipt_core.store import entry as store_entry

    e = store.put("probe", {"a": 1}, {"acc": 0.5})

    def oom(data):
        raise MemoryError()

    monkeypatch.setattr(store_entry, "strict_loads", oom)
    with pytest.raises(StoreError, match="cannot read entry"):
        Store(store.root).get(e.key)
    assert Store(store.root).query() == []  # skipped with a warning, not raised
    monkeypatch.undo()
    assert store.get(e.key) == e and not store.corrupt_dir.exists()


@pytest.mark.parametrize("exc", ["safetensors", "runtime", "oserror_in_rust"])
def test_any_write_error_is_one_store_error_and_leaves_nothing(store, monkeypatch, exc):
    import safetensors
    import safetensors.torch

    def full(tensors, filename, *a, **kw):
        Path(filename).write_bytes(b"\x00" * 100)  # half-written, like a disk that filled up
        if exc == "safetensors":
            raise safetensors.SafetensorError("Error while serializing: IoError(Os { code: 28, kind: "
                                              "StorageFull, message: \"No space left on device\" })")
        if exc == "runtime":
            raise RuntimeError("something inside the serialiser")
        raise safetensors.SafetensorError("Error while serializing: IoError(Permission denied)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    key = spec_key({"a": 1})
    with pytest.raises(StoreError) as info:
        store.put("probe", {"a": 1}, {"acc": 1.0}, {"w": torch.ones(3)})
    msg = str(info.value)
    assert key in msg and str(store.root) in msg and "\n" not in msg
    assert ("no space left" in msg) == (exc == "safetensors")
    assert _visible(store) == [] and _tmp_items(store) == []
    assert store.get(key) is None


def test_put_validation_errors_stay_type_and_value_errors(store):
    with pytest.raises(TypeError):
        store.put("probe", {"a": 1}, {"acc": 1.0}, {"w": [1, 2]})
    with pytest.raises(ValueError):
        store.put("probe", {"a": 1}, {"acc": float("nan")})


# -------------------------------------------------------------- orphaned temp items (issue 32)


def _dead_pid() -> int:
    p = mp.get_context("spawn").Process(target=time.sleep, args=(0,))
    p.start()
    p.join()
    return p.pid


def test_temp_of_a_dead_writer_goes_when_the_store_opens_and_a_live_one_stays(tmp_path):
    root = tmp_path / "cache"
    tag = store_tmp.host_tag()
    dead = root / "tmp" / f"w-{tag}-{_dead_pid()}-{'a' * 32}"
    mine = root / "tmp" / f"w-{tag}-{os.getpid()}-{'b' * 32}"
    other_host = root / "tmp" / f"w-otherhost.1-{os.getpid()}-{'c' * 32}"
    parent = root / "tmp" / f"w-{tag}-{os.getppid()}-{'d' * 32}.deleted"  # a live process: kept
    for d in (dead, mine, other_host, parent):
        d.mkdir(parents=True)
        (d / "tensors.safetensors").write_bytes(b"\x00" * 4096)
    store_mod.Store._swept.discard(root.resolve())
    s = Store(root)
    assert s.check()["tmp_stale"] == [dead.name]
    assert s.query() == []  # the first read of this root in this process sweeps it
    assert not dead.exists() and mine.exists() and other_host.exists() and parent.exists()
    old = time.time() - 2 * store_tmp.STALE_TMP_S
    for p in (other_host, *other_host.iterdir()):
        os.utime(p, (old, old))
    assert s.clean_tmp() == 1 and not other_host.exists() and mine.exists()
    # once per process per root: a second Store of the same root does not scan again
    dead.mkdir()
    assert Store(root).sweep_tmp() == 0 and dead.exists()


def test_put_writes_under_a_name_that_carries_its_pid(store, monkeypatch):
    import safetensors.torch

    seen = []
    real = safetensors.torch.save_file
    monkeypatch.setattr(safetensors.torch, "save_file", lambda t, f, *a, **k: (seen.append(f), real(t, f, *a, **k)))
    store.put("probe", {"a": 1}, {"acc": 1.0}, {"w": torch.ones(3)})
    name = Path(seen[0]).parent.name
    m = store_tmp.TMP_NAME_RE.match(name)
    assert m and int(m["pid"]) == os.getpid() and m["host"] == store_tmp.host_tag()


def test_check_reports_without_changing_and_repairs_with_repair(store):
    good = store.put("probe", {"a": 1}, {"acc": 1.0})
    bad = store.put("probe", {"a": 2}, {"acc": 1.0}, {"w": torch.ones(4)})
    _truncate_tensors(bad)
    stale = store.tmp_dir / f"w-{store_tmp.host_tag()}-{_dead_pid()}-{'e' * 32}"
    stale.mkdir()
    (stale / "x").write_bytes(b"1234")
    rep = store.check()
    assert rep["ok"] == 1 and [c["key"] for c in rep["corrupt"]] == [bad.key] and "sha256" in rep["corrupt"][0]["reason"]
    assert rep["tmp_stale"] == [stale.name] and rep["tmp_stale_bytes"] == 4 and rep["tmp_removed"] == 0
    assert bad.path.exists() and stale.exists() and rep["quarantined"] == 0  # nothing changed
    rep = store.check(repair=True)
    assert rep["repaired"] and rep["tmp_removed"] == 1 and rep["quarantined"] == 1 and rep["unseen_quarantines"] == 1
    assert not bad.path.exists() and not stale.exists()
    rep = store.check()
    assert rep["corrupt"] == [] and rep["ok"] == 1 and rep["tmp_stale"] == [] and store.get(good.key) == good
