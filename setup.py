"""Build hook only (the project's metadata is in pyproject.toml): the wheel carries a copy of the app.

The Streamlit app (``app.py``, ``pages/*.py``, ``.streamlit/config.toml``) lives at the repository
root, where ``streamlit run app.py`` and ARCHITECTURE.md expect it, outside any package. setuptools
ships package files only, and neither declarative route fits: ``package_dir`` mapping the root into a
package would ship every other root file with it (this setup.py included), and ``data_files`` installs
outside site-packages (under the environment's prefix), where ``ipt app`` cannot find them from the
package. So ``build_py`` copies the three into the built tree under ``ipt_app/site/`` (a folder
inside an existing package, not new top-level modules ``app``/``pages``); the source tree is not
touched. ``ipt_core/cli/app_command.py`` serves that copy once installed (its ``INSTALLED_APP_DIR``
names the same folder) and the root ``app.py`` in a checkout. An editable install copies nothing:
``ipt_core`` then runs from the checkout. MANIFEST.in puts the three in the sdist, so a wheel built
from it carries them too.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
APP_DIR = ("ipt_app", "site")  # below the build folder / site-packages


def app_files() -> list[Path]:
    """The app's files, relative to the root: app.py, pages/*.py, .streamlit/config.toml."""
    files = [Path("app.py"), Path(".streamlit", "config.toml")]
    files += sorted(p.relative_to(ROOT) for p in (ROOT / "pages").glob("*.py"))
    missing = [str(f) for f in files if not (ROOT / f).is_file()]
    if missing:
        raise SystemExit(f"setup.py: the app's files are missing: {', '.join(missing)}")
    return files


class build_py_with_app(build_py):
    """``build_py``, plus the app's files copied to ``<build>/ipt_app/site/``."""

    def _app_targets(self) -> list[tuple[Path, Path]]:
        if getattr(self, "editable_mode", False):
            return []
        return [(ROOT / f, Path(self.build_lib, *APP_DIR, f)) for f in app_files()]

    def run(self):
        super().run()
        for src, dst in self._app_targets():
            self.mkpath(str(dst.parent))
            self.copy_file(str(src), str(dst), preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [str(dst) for _, dst in self._app_targets()]


setup(cmdclass={"build_py": build_py_with_app})
