"""Floor 2, Pillow: checking an upload, making its master, rendering a derivative, converting colour."""
