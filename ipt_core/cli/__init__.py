"""The command line: `python -m ipt_core <command>` (main), its argument helpers (args), the analysis
commands (analysis) and the store check (verify)."""
