-- pg.lua: tests/bench/ingest.lua's requests (the same batches, a fresh batch_id each) for one of
-- several wrk processes started at once (tests/bench/pg.sh): ingest.lua seeds its batch ids from
-- the clock's second and the thread, so each process adds its own LW_BENCH_WRK to them.
dofile("tests/bench/ingest.lua")
local ingest_init = init
function init(args)
  ingest_init(args)
  run = run .. "-" .. (os.getenv("LW_BENCH_WRK") or "0")
end
