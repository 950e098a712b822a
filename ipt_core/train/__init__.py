"""The training loop: many independent runs in one bank (bank), its hooks (checkpoint, progress,
distributed) and the loop's parts (loop/)."""
