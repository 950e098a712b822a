"""Typed paths stay inside the allowed roots (``ipt_core.paths``)."""
import pytest

from ipt_core.paths import PathNotAllowed, allowed_roots, check_allowed, looks_like_path


def test_inside_outside_traversal_and_symlinks(tmp_path, monkeypatch):
    root, other = tmp_path / "root", tmp_path / "other"
    (root / "a").mkdir(parents=True)
    other.mkdir()
    (root / "link").symlink_to(other)
    monkeypatch.setenv("IPT_ALLOWED_ROOTS", str(root))
    assert allowed_roots() == [root.resolve()]
    assert check_allowed(root / "a", "suite path") == (root / "a").resolve()
    assert check_allowed(root / "not-yet" / "store", "result store")  # a folder the app would create
    for bad in (other, root / ".." / "other", root / "link", root / "link" / "x", "/etc"):
        with pytest.raises(PathNotAllowed, match="outside the allowed folders"):
            check_allowed(bad, "suite path")


def test_default_roots_hold_the_project_parent_and_the_temp_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("IPT_ALLOWED_ROOTS", raising=False)
    monkeypatch.setenv("IPT_CACHE", "/nonexistent-cache-root")
    roots = allowed_roots()
    from ipt_core.paths import PROJECT_ROOT

    assert PROJECT_ROOT.parent in roots and any(r == tmp_path.resolve() or r in tmp_path.resolve().parents for r in roots)
    assert check_allowed("/nonexistent-cache-root/x", "result store")


def test_hub_ids_are_not_paths():
    assert not looks_like_path("bert-base-uncased") and not looks_like_path("google/t5-small-lm-adapt")
    assert looks_like_path("/models/t5") and looks_like_path("./t5") and looks_like_path("~/t5")
