#!/usr/bin/env python3
"""FastCGI entry for lighttpd's ``bin-path``.

lighttpd starts this with the settings in ``bin-environment`` and a listening
socket on fd 0; it builds the app with ``create_app`` and runs flup. See
``huimages lighttpd-config`` and examples/lighttpd.conf.
"""

from huimages.fastcgi import main

if __name__ == "__main__":
    main()
