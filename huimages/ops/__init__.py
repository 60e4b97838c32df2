"""Floor 7, operations: the ``huimages`` command, migrations from huImages, orphaned originals."""
