#!/usr/bin/env python3
"""FastCGI entry for lighttpd's ``bin-path``, inside the package (so it exists in any install).

lighttpd runs it as a script (``python .../huimages/server.py``, or the
``huimages/server.py`` of a checkout, as huImages' example config did), with
the settings in ``bin-environment`` and a listening socket on fd 0.
"""

import os
import sys

# Run as a script, Python puts this file's folder first on sys.path, where the
# package's modules would shadow top-level names; the folder above it (a
# checkout, or site-packages) is what makes ``import huimages`` work.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
sys.path.insert(0, os.path.dirname(_here))
# huImages' layout: lighttpd starts the script in its own folder, and the
# cache (the document root) is ../cache. Given no data folder, that is kept:
# the checkout is the data folder.
if os.getcwd() == _here and not {"HUIMAGES_HOME", "HUIMAGES_CACHE_DIR"} & set(os.environ):
    os.environ["HUIMAGES_HOME"] = os.path.dirname(_here)

from huimages.http.fronts.fastcgi import main  # noqa: E402

if __name__ == "__main__":
    main()
