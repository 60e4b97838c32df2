"""Floor 2, Pillow: checking an upload and making its master (``master``), rendering (``render``),
the limits every opening obeys (``checks``), colour into sRGB (``colour``)."""

from huimages.imaging.checks import ACCEPT_ATTRIBUTE, ACCEPTED_NAMES, ImageInfo, probe_header
from huimages.imaging.master import Ingested, ingest, ingest_stored, make_master, master_dimensions, probe
from huimages.imaging.render import Deadline, Rendered, render, resample_filter

__all__ = [
    "ACCEPTED_NAMES",
    "ACCEPT_ATTRIBUTE",
    "Deadline",
    "ImageInfo",
    "Ingested",
    "Rendered",
    "ingest",
    "ingest_stored",
    "make_master",
    "master_dimensions",
    "probe",
    "probe_header",
    "render",
    "resample_filter",
]
