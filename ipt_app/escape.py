"""Show strings that came from users as text, never as markdown (security audit, issue 32).

``st.markdown``, ``st.caption``, ``st.info``/``warning``/``error``/``success``, headers and widget
labels render GitHub-flavoured markdown: a task type, a description, a label, an upload's name or
file name, a suite path, a store path or a result's metadata interpolated into them can carry an
image (``![x](http://host/x.png)``, fetched by every visitor's browser), a link, HTML, emphasis or
LaTeX. Every such string goes through :func:`md_escape` (or :func:`md_code` inside a code span); the
constant text around it stays markdown. Dataframes, ``st.code`` and ``st.text`` show plain text and
need neither. Torch- and pandas-free: the sidebar imports it on every page.

Example:
    >>> print(md_escape("<b>f</b>![t](http://127.0.0.1/x.png)"))
    \\<b\\>f\\</b\\>\\!\\[t\\]\\(http\\://127.0.0.1/x.png\\)
    >>> md_code("a `b` c")
    "`a 'b' c`"
"""
from __future__ import annotations

import re

__all__ = ["md_escape", "md_code"]

# the characters that open markdown, GFM, HTML, LaTeX ($) or Streamlit's directives (:red[...]) when
# found anywhere in a line; CommonMark lets a backslash escape any of them. Others (. , ' - : ...)
# stay as they are, so messages read (and are searched) as before; the few places where those do
# act are handled below
_PUNCT_RE = re.compile(r"([\\`*{}\[\]()<>#!|~$&]|(?<![^\W_])_|_(?![^\W_]))")
# (an underscore between two letters or digits, as in task_name, never opens or closes emphasis in
# CommonMark, so it is left as it is: names read and search as themselves)
_BREAK_RE = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
_AUTOLINK_RE = re.compile(r"(?i)(:(?=//)|(?<=\bwww)\.)")  # GFM turns http://... and www.... into links
_BLOCK_RE = re.compile(r"^(\s*)([-+=]|\d+[.)])")  # a list item or heading underline where a block starts


def md_escape(value: object) -> str:
    """``str(value)`` with every markdown special backslash-escaped and line breaks turned into
    spaces (a break would start a new block: a heading, a list, a code block), to be shown as text."""
    text = _PUNCT_RE.sub(r"\\\1", _BREAK_RE.sub(" ", str(value)))
    text = _AUTOLINK_RE.sub(r"\\\1", text)
    return _BLOCK_RE.sub(lambda m: m[1] + m[2][:-1] + "\\" + m[2][-1], text)


def md_code(value: object) -> str:
    """``str(value)`` as an inline code span: nothing inside one is markdown, but a backslash does
    not escape there either, so the backticks that would close it early become ``'``."""
    text = _BREAK_RE.sub(" ", str(value)).replace("`", "'")
    return f"`{text}`" if text.strip() else "` `"
