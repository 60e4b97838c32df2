"""The HTTP fronts, each wrapping the one WSGI callable of ``huimages.http.app.create_app``.

``standalone``: gunicorn, for ``huimages serve``. ``fastcgi``: flup's threaded
FastCGI server, for lighttpd. ``lighttpd``: the lighttpd config that serves
cache hits itself and sends misses to the FastCGI backends, and the runner of
``huimages serve --lighttpd``. lighttpd spawns the backends from
``huimages/server.py``, which exists wherever the package is installed.
"""
