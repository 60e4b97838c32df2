"""Floor 0, pure: IDs, the size and URL grammar, formats, text checks, byte units. No I/O, no Pillow."""
