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


def test_the_checkouts_parent_only_from_a_checkout(monkeypatch, tmp_path):
    """Installed, PROJECT_ROOT is site-packages and its parent lib/pythonX.Y/: not an allowed root.
    From a checkout (pyproject.toml and app.py beside ipt_core/) its parent is, for ../shared."""
    import ipt_core.paths as paths

    monkeypatch.delenv("IPT_ALLOWED_ROOTS", raising=False)
    monkeypatch.delenv("IPT_CACHE", raising=False)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(paths.tempfile, "gettempdir", lambda: str(work))
    assert paths.is_checkout()  # the tests run from the checkout

    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "ipt_core").mkdir(parents=True)
    monkeypatch.setattr(paths, "PROJECT_ROOT", site)
    assert not paths.is_checkout()
    roots = paths.allowed_roots()
    assert site.parent.resolve() not in roots and roots == [work.resolve(), home.resolve()]
    with pytest.raises(PathNotAllowed):
        check_allowed(site.parent / "python3.11" / "os.py", "suite path")

    checkout = tmp_path / "src" / "ipt-core"
    (checkout / "ipt_core").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\n")
    assert not paths.is_checkout(checkout)  # pyproject.toml alone: not this project's checkout
    (checkout / "app.py").write_text("")
    monkeypatch.setattr(paths, "PROJECT_ROOT", checkout)
    assert paths.is_checkout() and paths.allowed_roots()[0] == checkout.parent.resolve()


def test_hub_ids_are_not_paths():
    assert not looks_like_path("bert-base-uncased") and not looks_like_path("google/t5-small-lm-adapt")
    assert looks_like_path("/models/t5") and looks_like_path("./t5") and looks_like_path("~/t5")


# --- suites read on a store's or a suite's word: symlinks inside a suite (issue 32) ---------------

from ipt_core.paths import check_suite_allowed, check_tree_allowed, suite_local_path  # noqa: E402


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """``inside`` is the only allowed root; ``outside/secret.csv`` a file no suite may reach."""
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret.csv").write_text("secret_col,label\nsecret row,a\n")
    monkeypatch.setenv("IPT_ALLOWED_ROOTS", str(inside))
    return inside, outside


def test_links_inside_the_roots_pass(roots):
    inside, _ = roots
    (inside / "data").mkdir()
    (inside / "data" / "rows.jsonl").write_text("{}\n")
    task = inside / "suite" / "t1"
    task.mkdir(parents=True)
    (task / "train.jsonl").symlink_to(inside / "data" / "rows.jsonl")  # a file link inside
    (inside / "suite" / "t2").symlink_to(inside / "data")               # a folder link inside
    (inside / "suite" / "dangling").symlink_to(inside / "gone")         # dangling, but inside
    assert check_tree_allowed(inside / "suite", "suite") == (inside / "suite").resolve()
    assert check_suite_allowed(str(inside / "suite")) == (inside / "suite").resolve()


@pytest.mark.parametrize("where", ["top", "task_file", "nested", "via_linked_folder"])
def test_a_link_out_anywhere_in_the_suite_is_refused(roots, where):
    """A file or folder link resolving outside the roots, at the suite's top, in a task folder (the
    audit's ``t/train.jsonl``), two levels down, or inside a folder reached by a link inside."""
    inside, outside = roots
    suite = inside / "suite"
    link = {"top": suite / "data.csv", "task_file": suite / "t" / "train.jsonl",
            "nested": suite / "a" / "b" / "train.jsonl", "via_linked_folder": inside / "other" / "train.jsonl"}[where]
    link.parent.mkdir(parents=True)
    suite.mkdir(exist_ok=True)
    link.symlink_to(outside / "secret.csv")
    if where == "via_linked_folder":
        (suite / "t").symlink_to(inside / "other")
    with pytest.raises(PathNotAllowed, match="outside the allowed folders") as e:
        check_tree_allowed(suite, "suite")
    assert str(outside / "secret.csv") in str(e.value) and "holds the link" in str(e.value)


def test_a_folder_link_out_is_refused(roots):
    inside, outside = roots
    (inside / "suite").mkdir()
    (inside / "suite" / "t").symlink_to(outside)
    with pytest.raises(PathNotAllowed, match="holds the link"):
        check_tree_allowed(inside / "suite", "suite")


def test_a_csv_suite_that_is_itself_a_link(roots):
    inside, outside = roots
    (inside / "own.csv").write_text("text,label\n")
    (inside / "ok.csv").symlink_to(inside / "own.csv")
    (inside / "bad.csv").symlink_to(outside / "secret.csv")
    assert check_suite_allowed(str(inside / "ok.csv")) == (inside / "own.csv").resolve()
    with pytest.raises(PathNotAllowed, match="outside the allowed folders"):
        check_suite_allowed(str(inside / "bad.csv"))
    with pytest.raises(PathNotAllowed):
        check_suite_allowed(str(outside / "secret.csv"))


def test_a_task_json_spec_checks_its_folder(roots):
    """``load_suite(".../t/task.json")`` loads the whole folder: its siblings are checked."""
    inside, outside = roots
    (inside / "t").mkdir()
    (inside / "t" / "task.json").write_text("{}")
    (inside / "t" / "train.jsonl").symlink_to(outside / "secret.csv")
    with pytest.raises(PathNotAllowed, match="train.jsonl"):
        check_suite_allowed(str(inside / "t" / "task.json"))


def test_hf_local_paths_are_checked_like_paths(roots):
    inside, outside = roots
    (inside / "ds" / "train").mkdir(parents=True)
    assert suite_local_path(f"hf:{inside / 'ds'}") == str(inside / "ds")
    assert suite_local_path(f"hf:{inside / 'ds'}:cfg") == str(inside / "ds")  # the config is not a path
    assert check_suite_allowed(f"hf:{inside / 'ds'}:cfg") == (inside / "ds").resolve()
    for bad in (f"hf:{outside}", f"hf:{outside}:cfg", f"hf:{inside}/../outside"):
        with pytest.raises(PathNotAllowed):
            check_suite_allowed(bad)
    (inside / "ds" / "train" / "data-00000.arrow").symlink_to(outside / "secret.csv")
    with pytest.raises(PathNotAllowed, match="holds the link"):
        check_suite_allowed(f"hf:{inside / 'ds'}")
    # demo and hub dataset names read no local path
    assert suite_local_path("demo") is None and suite_local_path("hf:glue:sst2") is None
    assert check_suite_allowed("demo") is None and check_suite_allowed("hf:glue:sst2") is None


def test_the_walk_is_bounded(roots):
    """Too many entries: refused (the app cannot vouch for what it did not look at); a link loop:
    refused; folders the loader never enters (hidden, ``_...``) are not walked."""
    inside, outside = roots
    big = inside / "big"
    big.mkdir()
    for i in range(30):
        (big / f"f{i}").write_text("")
    with pytest.raises(PathNotAllowed, match="more than 20 files"):
        check_tree_allowed(big, "suite", max_entries=20)
    assert check_tree_allowed(big, "suite", max_entries=40)
    (big / "loop").symlink_to(big / "loop")
    with pytest.raises(PathNotAllowed, match="cannot be resolved"):
        check_tree_allowed(big, "suite")
    deep = inside / "deep"
    (deep / ".git" / "objects").mkdir(parents=True)
    (deep / ".git" / "objects" / "x").symlink_to(outside / "secret.csv")  # never read by the loader
    assert check_tree_allowed(deep, "suite")
    far = deep / "a" / "b" / "c" / "d" / "e"
    far.mkdir(parents=True)
    (far / "x").symlink_to(outside / "secret.csv")  # below the loader's reach: not walked
    assert check_tree_allowed(deep, "suite")


def test_extra_roots_hold_the_stores_uploads(roots, tmp_path):
    """The store's uploads are readable even when IPT_ALLOWED_ROOTS leaves the default store out."""
    _, outside = roots
    up = tmp_path / "store" / "uploads" / "mine"
    up.mkdir(parents=True)
    with pytest.raises(PathNotAllowed):
        check_tree_allowed(up, "suite")
    assert check_tree_allowed(up, "suite", extra_roots=[tmp_path / "store" / "uploads"]) == up.resolve()
    (up / "t.csv").symlink_to(outside / "secret.csv")
    with pytest.raises(PathNotAllowed, match="holds the link"):
        check_tree_allowed(up, "suite", extra_roots=[tmp_path / "store" / "uploads"])
