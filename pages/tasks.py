"""Tasks: the chosen suite's tasks and examples; upload a suite (zip of task folders or a CSV)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ipt_app import uploads
from ipt_app.context import ctx, suite_info, suite_problem
from ipt_app.escape import md_escape
from ipt_core import tasks as tasks_mod

c = ctx()
st.title("Tasks")
if flash := st.session_state.pop("upload_flash", None):
    st.success(flash)
# every user-supplied string (suite, task, upload names, descriptions, labels, errors) is escaped: issue 32
st.caption(f"Suite **{md_escape(c['suite_name'])}**"
           + (f" ({md_escape(c['suite'])})" if c["suite"] != c["suite_name"] else ""))

info = suite_info(c["suite"])
suite_problem(c, info)
if "error" not in info:
    df = pd.DataFrame(info["rows"])
    fam = df.groupby("family")["task"].apply(list)
    cols = st.columns(3)
    cols[0].metric("Tasks", len(df))
    cols[1].metric("Families", len(fam))
    cols[2].metric("Examples", int(df[["train", "dev", "test"]].to_numpy().sum()))
    st.dataframe(df, hide_index=True, key="tasks-table",
                 column_config={"description": st.column_config.TextColumn(width="large")})
    st.download_button("Download CSV", df.to_csv(index=False).encode(), file_name=f"{c['suite_name']}_tasks.csv",
                       mime="text/csv", key="tasks-csv", on_click="ignore", icon=":material/download:")
    st.markdown("**Families:** " + " · ".join(f"{md_escape(f)} ({len(t)})" for f, t in fam.items()))
    st.code(f"python -m ipt_core tasks --suite {c['suite']}", language="bash")

    st.subheader("Examples")
    task = st.selectbox("Task", info["names"], key="tasks-example-task")
    if task:
        row = next(r for r in info["rows"] if r["task"] == task)
        desc = str(row.get("description") or "").strip()
        st.markdown((f"*{md_escape(desc)}*  \n" if desc else "") + f"Labels: {md_escape(row['labels'])}")
        st.dataframe(pd.DataFrame(info["examples"][task]), hide_index=True, key="tasks-examples")

st.divider()
st.subheader("Upload a task suite")
st.markdown(
    "A **.zip** of task folders (each `task.json` + `train.jsonl`, `dev.jsonl`, `test.jsonl`) or of CrossFit files "
    "(`{task}_{k}_{seed}_{split}.tsv`), or one **.csv/.tsv** with a header `text[,text_pair],label[,split][,task][,type]`. "
    f"At most {uploads.MAX_TOTAL_BYTES // 2**20} MB unpacked and {uploads.MAX_FILES} files. The suite is checked "
    "before it is kept; it then appears in the sidebar's suite picker."
)
with st.form("upload-form", clear_on_submit=False):
    file = st.file_uploader("Suite file", type=["zip", "csv", "tsv"], key="upload-file",
                            max_upload_size=uploads.MAX_TOTAL_BYTES // 2**20)
    a, b = st.columns([3, 1])
    name = a.text_input("Name (default: the file's name)", key="upload-name")
    overwrite = b.checkbox("Replace an upload of that name", key="upload-overwrite")
    go = st.form_submit_button("Add suite", type="primary")
if go:
    if file is None:
        st.error("Choose a .zip, .csv or .tsv file first.")
    else:
        try:
            res = uploads.save_upload(c["root"], file.name, file.getvalue(), name=name.strip() or None,
                                      overwrite=overwrite)
        except (uploads.UploadError, tasks_mod.TaskDataError) as e:
            st.error(f"Upload refused: {md_escape(e)}")
        except OSError as e:
            st.error(f"Upload failed while writing to {md_escape(c['root'])}: {md_escape(e)}")
        else:
            st.session_state["upload_flash"] = md_escape(f"Added suite {res['name']!r} with {len(res['tasks'])} tasks "
                                                         f"({', '.join(res['tasks'])}); it is now selected in the sidebar.")
            st.session_state["pending_suite"] = f"{res['name']} (uploaded)"  # the sidebar selects it on the rerun
            st.session_state["ctx_suite"], st.session_state["ctx_suite_name"] = res["spec"], res["name"]
            st.rerun()

listed = uploads.list_uploads(c["root"])
if listed:
    st.markdown("**Uploaded suites**")
    for u in listed:
        a, b = st.columns([5, 1])
        a.markdown(f"**{md_escape(u['name'])}** · {md_escape(u['kind'])} · {len(u['tasks'])} tasks "
                   f"· from {md_escape(u['source'])}")
        if b.button("Delete", key=f"upload-del-{u['name']}"):
            uploads.delete_upload(c["root"], u["name"])
            st.rerun()
