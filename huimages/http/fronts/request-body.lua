-- huimages: a chunked request body is refused before lighttpd reads any of it.
-- FastCGI needs a body's length, so lighttpd would first store a chunked body
-- whole (in server.upload-dirs) and only then pass it on: a stranger could
-- fill the disk with bodies nobody checked the token of. Run for methods other
-- than GET and HEAD only (the config's condition), before the body is read.
local r = lighty.r
if r.req_body.len ~= -1 then -- -1: the length is unknown, as with Transfer-Encoding: chunked
  return
end
local uri = r.req_attr["request.orig-uri"] or ""
local message = "send the body with a Content-Length header: this server takes no chunked request bodies"
r.resp_header["Cache-Control"] = "no-store"
if uri == "/images" or string.sub(uri, 1, 8) == "/images/" or string.sub(uri, 1, 8) == "/images?" then
  r.resp_header["Content-Type"] = "application/json"
  r.resp_body.set({ '{"error": "' .. message .. '", "kind": "LengthRequired"}' })
else
  r.resp_header["Content-Type"] = "text/plain; charset=utf-8"
  r.resp_body.set({ message, "\n" })
end
return 411
