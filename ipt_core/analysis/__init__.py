"""Pure analysis of stored results (numpy, scikit-learn): task maps, their measured quality, metrics,
the methods' diagnostics. Nothing here loads a model or trains."""
