#!/usr/bin/env python3
"""FastCGI entry for lighttpd's ``bin-path`` in a checkout; the package's ``huimages/server.py`` is the same.

See ``huimages lighttpd-config`` and examples/lighttpd.conf.
"""

from huimages.http.fronts.fastcgi import main

if __name__ == "__main__":
    main()
