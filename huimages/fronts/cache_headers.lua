-- huimages: headers of cache hits served by lighttpd.
-- Runs once the physical path is known. A file that exists is a cache hit: it
-- gets the same Cache-Control as the Python server sends. Misses continue to
-- FastCGI untouched, so the app's own headers (no-store on errors) stand.
local st = lighty.stat(lighty.env["physical.path"])
if st and st["is_file"] then
  lighty.r.resp_header["Cache-Control"] = "public, max-age=31536000, immutable"
end
