"""Plotly figure builders: pure functions from plain records to a table and the figure drawn from it."""
