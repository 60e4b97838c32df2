"""Floor 2, plumbing: CouchDB, S3, SQLite and filesystem access, each turning its own errors into huimages'."""
