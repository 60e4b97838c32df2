"""FastCGI entry for lighttpd's ``bin-path`` (completed by the FastCGI front)."""
