"""The Streamlit app's helpers, one job a module (pages import from here; nothing here trains).

- :mod:`ipt_app.context`     the sidebar's choices (:func:`~ipt_app.context.ctx`), the suite listing, devices
- :mod:`ipt_app.sidebar`     the shared sidebar app.py draws
- :mod:`ipt_app.store_reads` entries from the main store, then the shipped demo store
- :mod:`ipt_app.widgets`     a chart with its CSV and reproducing command, empty states
- :mod:`ipt_app.job_panel`   submitting jobs, their live state, progress, logs and cancel
- :mod:`ipt_app.forms`       the launch forms (each submits one CLI command as a job)

Like the pages, these modules use the core's ``store``, ``jobs``, ``maps``, ``figures`` and
``tasks`` only; they never import the bank or a method.
"""
