-- wrk script: cycles through a list of request paths, one per line, read from the file named
-- by the environment variable VOD_URLS (e.g. "/i/bench_60s_720p.mp4/segment1_0_av.ts").
-- Each wrk thread loads the list and starts at its own offset, so the threads do not ask
-- for the same segment at the same moment.
local file = os.getenv("VOD_URLS")
if not file then
  error("vod_urls.lua: set VOD_URLS to a file of request paths, one per line")
end
local paths = {}
for line in io.lines(file) do
  if line ~= "" then
    paths[#paths + 1] = line
  end
end
if #paths == 0 then
  error("vod_urls.lua: no paths in " .. file)
end

local next_id = 0
setup = function(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local counter = nil
request = function()
  if counter == nil then
    counter = (id or 0) * math.floor(#paths / 2)
  end
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
