"""Floor 6, HTTP: the WSGI app, the images API, the web interface, and the fronts that serve them."""
