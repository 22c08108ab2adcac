-- wrk script: cycles through the 10 segments of the 60 s bench file (6 s segments).
counter = 0
request = function()
  counter = counter + 1
  local n = (counter % 10) + 1
  return wrk.format("GET", "/i/bench_60s_720p.mp4/segment" .. n .. "_0_av.ts")
end
