"""``--suite hf:NAME`` makes no network call unless the user opts in with ``IPT_HF_DOWNLOAD=1``."""

from __future__ import annotations

import os
import socket

import pytest

from ipt_core.tasks import SuiteSourceError, load_suite

datasets = pytest.importorskip("datasets")
hub_constants = pytest.importorskip("huggingface_hub.constants")

OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def _tiny_dict():
    rows = {"text": [f"text {i}" for i in range(6)], "label": ["no", "yes"] * 3}
    return datasets.DatasetDict({s: datasets.Dataset.from_dict(rows) for s in ("train", "validation", "test")})


def _offline_state() -> dict:
    return {"env": {k: os.environ.get(k) for k in OFFLINE_ENV},
            "datasets": (datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE),
            "hub": hub_constants.HF_HUB_OFFLINE}


@pytest.fixture
def online_by_default(monkeypatch):
    """A process where nothing asked for offline mode (as on a machine with network)."""
    for k in (*OFFLINE_ENV, "IPT_HF_DOWNLOAD"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    return _offline_state()


def test_load_dataset_runs_offline_by_default_and_state_is_restored(online_by_default, monkeypatch):
    seen = []

    def fake_load_dataset(name, config=None, **kwargs):
        seen.append((name, config, _offline_state(), kwargs))
        return _tiny_dict()

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    suite = load_suite("hf:some-user/some-dataset:cfg")
    assert suite.names() == ["some-dataset_cfg"] and suite.tasks[0].labels == ("no", "yes")
    (name, config, state, _), = seen
    assert (name, config) == ("some-user/some-dataset", "cfg")
    assert state["env"] == {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    assert state["datasets"] == (True, True) and state["hub"] is True
    assert _offline_state() == online_by_default  # switched back after the load


def test_opt_in_env_var_lets_it_download(online_by_default, monkeypatch):
    seen = []
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None, **kw: seen.append(_offline_state())
                        or _tiny_dict())
    monkeypatch.setenv("IPT_HF_DOWNLOAD", "1")
    load_suite("hf:some-user/some-dataset")
    assert seen == [online_by_default]  # offline mode not forced: the user asked for downloads


def test_uncached_dataset_fails_without_touching_the_network(online_by_default, monkeypatch, tmp_path):
    """The real ``datasets.load_dataset``: any DNS lookup or connection attempt is recorded and refused."""
    attempts = []

    def no_dns(*args, **kwargs):
        attempts.append(("getaddrinfo", args[:2]))
        raise OSError("network blocked by the test")

    def no_connect(self, address, *args, **kwargs):
        attempts.append(("connect", address))
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", no_connect)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache: nothing to find locally
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-home" / "datasets")
    with pytest.raises(SuiteSourceError) as info:
        load_suite("hf:ipt-core-test/not-a-cached-dataset")
    assert attempts == []
    assert "IPT_HF_DOWNLOAD=1" in str(info.value) and info.value.file == "hf:ipt-core-test/not-a-cached-dataset"
    assert _offline_state() == online_by_default
