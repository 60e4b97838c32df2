-- huimages: lighttpd's own error answers, in the app's words. A FastCGI
-- backend that died mid-request (500) or did not answer within read-timeout
-- (504) becomes a plain 503 with Retry-After, as the app answers when it is
-- overloaded; an upload over lighttpd's server.max-request-size (413) gets
-- the JSON error body of the images API. The app's own answers always carry
-- Cache-Control, so they pass through unchanged.
local r = lighty.r
local status = r.req_item.http_status
if r.resp_header["Cache-Control"] ~= nil then
  return
end
if status == 500 or status == 502 or status == 504 then
  r.resp_header["Retry-After"] = "5"
  r.resp_header["Cache-Control"] = "no-store"
  r.resp_header["Content-Type"] = "text/plain; charset=utf-8"
  r.resp_body.set({ "the image server's worker stopped or did not answer; try again in a few seconds\n" })
  return 503
end
if status == 413 then
  r.resp_header["Cache-Control"] = "no-store"
  r.resp_header["Content-Type"] = "application/json"
  r.resp_body.set({ '{"error": "the body is over the upload limit (HUIMAGES_MAX_UPLOAD_BYTES); nothing stored"}' })
  return 413
end
